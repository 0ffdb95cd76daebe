"""A study's report: the table, plots and sentences generated from its numbers.

:func:`write_report` reads the records of :func:`rnnlab.analysis.study.run_study` and writes,
in the study directory::

    report.md  report.html                  the same content, Markdown and HTML
    plots/curves_<task>.png                 validation metric against step, one line per cell
                                            (mean over seeds), one panel per length
    plots/length_<task>.png                 final test metric against sequence length
    plots/gradient_flow_init.png            ||dL/dh_t|| against t for each cell, at init
    plots/gradient_flow_trained.png         ... and for the trained models
    gradient_flow.json                      the ratios ||dL/dh_1|| / ||dL/dh_T|| behind them

Every sentence of the report comes from :func:`rnnlab.analysis.conclusions.conclusions` or
:func:`gradient_sentences`, i.e. from the numbers: different numbers give different text.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rnnlab.analysis.conclusions import (
    Record,
    cell_name,
    conclusions,
    format_value,
    metric_name,
    summarize,
)
from rnnlab.analysis.plots import plot_gradient_flow, save_figure
from rnnlab.analysis.study import RunRecord, StudyResult
from rnnlab.io import atomic_write_text


def label_of(record: RunRecord, varied: Sequence[str]) -> str:
    """The name of a run's configuration: its cell, plus the other grid settings that vary
    (``lstm``, or ``lstm hidden_size=64`` when hidden sizes vary too)."""
    extra = [f"{k}={record.settings[k]}" for k in varied if k != "cell" and k in record.settings]
    return " ".join([record.cell, *extra])


def varied_settings(records: Sequence[RunRecord]) -> list[str]:
    """Grid settings that take more than one value across the records."""
    keys: dict[str, set[str]] = {}
    for r in records:
        for k, v in r.settings.items():
            keys.setdefault(k, set()).add(repr(v))
    return [k for k, values in keys.items() if len(values) > 1]


def to_records(records: Sequence[RunRecord]) -> list[Record]:
    """The study's runs as :class:`~rnnlab.analysis.conclusions.Record` (cell = label)."""
    varied = varied_settings(records)
    return [
        Record(r.task, r.length, label_of(r, varied), r.seed, r.metric, r.value, r.baseline)
        for r in records
    ]


@dataclass(frozen=True)
class Row:
    """One line of the study table: a task, length and configuration over its seeds."""

    task: str
    length: int
    cell: str
    metric: str
    mean: float
    std: float
    seeds: int
    solved: int | None
    baseline: float | None
    parameters: int
    seconds_per_1000_steps: float

    @property
    def value(self) -> str:
        """``mean ± std`` with sensible decimals."""
        return format_value(self.mean, self.std, self.baseline)

    @property
    def solved_text(self) -> str:
        """``2/3`` or ``-`` when the metric has no solved criterion."""
        return "-" if self.solved is None else f"{self.solved}/{self.seeds}"


def table_rows(records: Sequence[RunRecord]) -> list[Row]:
    """Per task, length and configuration: metric mean ± std over seeds, solved fraction,
    parameters and seconds per 1,000 steps, in study order."""
    varied = varied_settings(records)
    summaries = {(s.task, s.length, s.cell, s.metric): s for s in summarize(to_records(records))}
    groups: dict[tuple[str, int, str, str], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.task, r.length, label_of(r, varied), r.metric), []).append(r)
    rows = []
    for key, items in groups.items():
        s = summaries[key]
        rows.append(
            Row(
                task=key[0],
                length=key[1],
                cell=key[2],
                metric=key[3],
                mean=s.mean,
                std=s.std,
                seeds=s.seeds,
                solved=s.solved,
                baseline=s.baseline,
                parameters=items[0].parameters,
                seconds_per_1000_steps=statistics.fmean(r.seconds_per_1000_steps for r in items),
            )
        )
    return rows


# ------------------------------------------------------------------------------- plots

_LOG_METRICS = frozenset({"mse", "nrmse", "rmse", "cross_entropy", "loss"})


def plot_curves(records: Sequence[RunRecord], task: str, path: Path) -> Path:
    """Validation metric against training step for one task: a panel per length, a line per
    configuration (mean over seeds; thin lines: each seed)."""
    varied = varied_settings(records)
    mine = [r for r in records if r.task == task]
    lengths = sorted({r.length for r in mine})
    fig = Figure(figsize=(4.2 * len(lengths), 3.4), layout="constrained")
    axes = fig.subplots(1, len(lengths), squeeze=False)[0]
    metric = mine[0].metric
    for ax, length in zip(axes, lengths, strict=True):
        by_label: dict[str, list[RunRecord]] = {}
        for r in mine:
            if r.length == length:
                by_label.setdefault(label_of(r, varied), []).append(r)
        for label, items in by_label.items():
            color = None
            for r in items:
                if r.curve:
                    steps, values = zip(*r.curve, strict=True)
                    (line,) = ax.plot(steps, values, linewidth=0.6, alpha=0.4, color=color)
                    color = line.get_color()
            common = min((len(r.curve) for r in items), default=0)
            if common:
                at = [items[0].curve[i][0] for i in range(common)]
                means = [statistics.fmean(r.curve[i][1] for r in items) for i in range(common)]
                ax.plot(at, means, linewidth=2, color=color, label=cell_name(label))
        baseline = next((r.baseline for r in mine if r.length == length and r.baseline), None)
        if baseline is not None:
            ax.axhline(baseline, color="gray", linestyle="--", linewidth=1, label="baseline")
        if metric in _LOG_METRICS:
            ax.set_yscale("log")
        ax.set_title(f"{task}, T={length}")
        ax.set_xlabel("training step")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_ylabel(f"validation {metric_name(metric)}")
    return save_figure(fig, path)


def plot_lengths(records: Sequence[RunRecord], task: str, path: Path) -> Path:
    """Final test metric against sequence length for one task, mean ± std over seeds."""
    rows = [r for r in table_rows(records) if r.task == task]
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.subplots()
    for label in dict.fromkeys(r.cell for r in rows):
        mine = sorted((r for r in rows if r.cell == label), key=lambda r: r.length)
        ax.errorbar(
            [r.length for r in mine],
            [r.mean for r in mine],
            yerr=[r.std for r in mine],
            marker="o",
            capsize=3,
            label=cell_name(label),
        )
    baseline = next((r.baseline for r in rows if r.baseline is not None), None)
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", linewidth=1, label="baseline")
    metric = rows[0].metric
    if metric in _LOG_METRICS:
        ax.set_yscale("log")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(f"test {metric_name(metric)}")
    ax.set_title(task)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)


# ----------------------------------------------------------------------- gradient flow


def _order(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return str(value)
    return f"{value:.1e}"


def gradient_sentences(ratios: dict[str, dict[str, float]], task: str, length: int) -> list[str]:
    """Sentences comparing ``||dL/dh_1|| / ||dL/dh_T||`` across cells, from the numbers.

    Args:
        ratios: ``{"init": {cell: ratio}, "trained": {cell: ratio}}``.
        task, length: where they were measured.
    """
    sentences = []
    for stage, words in (("init", "at initialization"), ("trained", "after training")):
        values = ratios.get(stage, {})
        if not values:
            continue
        listed = ", ".join(f"{cell_name(c)} {_order(v)}" for c, v in values.items())
        text = (
            f"On {task} at T={length}, {words}, the gradient reaching the first step relative "
            f"to the last, ||dL/dh_1|| / ||dL/dh_T||, is: {listed}."
        )
        finite = {c: v for c, v in values.items() if v > 0 and math.isfinite(v)}
        simple = [c for c in finite if c.split()[0] == "rnn"]
        if simple and len(finite) > len(simple):
            reference = simple[0]
            parts = []
            for cell, value in finite.items():
                if cell == reference:
                    continue
                orders = math.log10(value / finite[reference])
                if abs(orders) < 1:
                    parts.append(f"{cell_name(cell)}'s is within one order of magnitude of it")
                else:
                    side = "above" if orders > 0 else "below"
                    parts.append(f"{cell_name(cell)}'s is {_orders(orders)} {side}")
            text += f" Against {cell_name(reference)}'s: " + "; ".join(parts) + "."
        elif len(finite) >= 2:
            low = min(finite, key=lambda c: finite[c])
            high = max(finite, key=lambda c: finite[c])
            orders = math.log10(finite[high] / finite[low])
            if orders >= 1:
                text += (
                    f" {_capitalize(cell_name(high))}'s is {_orders(orders)} "
                    f"above {cell_name(low)}'s."
                )
            else:
                text += " They are within one order of magnitude of each other."
        sentences.append(text)
    return sentences


def _orders(log_ratio: float) -> str:
    count = round(abs(log_ratio))
    return f"{count} order{'' if count == 1 else 's'} of magnitude"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def gradient_flow_section(
    result: StudyResult, plots: Path
) -> tuple[dict[str, dict[str, float]], list[Path], str, int] | None:
    """Diagnose the first seed's run of every cell on the study's diagnose task at its
    longest length (init and trained); plot and return the ratios."""
    from rnnlab.analysis.diagnose import diagnose

    task = result.study.diagnose_task or result.study.tasks[0].name
    mine = [r for r in result.records if r.task == task]
    if not mine:
        return None
    length = max(r.length for r in mine)
    seed = min(r.seed for r in mine)
    varied = varied_settings(result.records)
    chosen = [r for r in mine if r.length == length and r.seed == seed]
    flows: dict[str, dict[str, Any]] = {"init": {}, "trained": {}}
    ratios: dict[str, dict[str, float]] = {"init": {}, "trained": {}}
    for r in chosen:
        label = label_of(r, varied)
        found = diagnose(result.out_dir / "runs" / r.run_id, out_dir=None, batch_size=64)
        for stage, item in found.items():
            flows[stage][cell_name(label)] = item.flow
            ratios[stage][label] = item.flow.ratio()
    written = []
    for stage, words in (("init", "at initialization"), ("trained", "trained")):
        written.append(
            plot_gradient_flow(
                flows[stage],
                plots / f"gradient_flow_{stage}.png",
                title=f"{task}, T={length}, seed {seed}: mean ||dL/dh_t||, {words}",
            )
        )
    return ratios, written, task, length


# ------------------------------------------------------------------------------ report


def _md_table(rows: Sequence[Row]) -> str:
    lines = [
        "| task | T | cell | metric | mean ± std | solved | parameters | s / 1000 steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.task} | {r.length} | {r.cell} | {metric_name(r.metric)} | {r.value} "
            f"| {r.solved_text} | {r.parameters:,} | {r.seconds_per_1000_steps:.1f} |"
        )
    return "\n".join(lines)


def _html_table(rows: Sequence[Row]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("task", "T", "cell", "metric", "mean ± std", "solved", "parameters",
                  "s / 1000 steps")
    )  # fmt: skip
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                r.task,
                r.length,
                r.cell,
                metric_name(r.metric),
                r.value,
                r.solved_text,
                f"{r.parameters:,}",
                f"{r.seconds_per_1000_steps:.1f}",
            )
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Report:
    """What :func:`write_report` wrote and said."""

    rows: list[Row]
    sentences: list[str]
    gradient: list[str]
    ratios: dict[str, dict[str, float]]
    files: list[Path]


def write_report(result: StudyResult, *, gradient_flow: bool = True) -> Report:
    """Write ``report.md``, ``report.html`` and the plots of a study into its directory.

    Args:
        result: what :func:`~rnnlab.analysis.study.run_study` returned.
        gradient_flow: also diagnose the trained models (a few seconds per cell).
    """
    folder = result.out_dir
    plots = folder / "plots"
    records = result.records
    rows = table_rows(records)
    sentences = conclusions(to_records(records))
    files: list[Path] = []
    for task in dict.fromkeys(r.task for r in records):
        files.append(plot_curves(records, task, plots / f"curves_{task}.png"))
        if len({r.length for r in records if r.task == task}) > 1:
            files.append(plot_lengths(records, task, plots / f"length_{task}.png"))
    ratios: dict[str, dict[str, float]] = {}
    gradient: list[str] = []
    if gradient_flow:
        section = gradient_flow_section(result, plots)
        if section is not None:
            ratios, written, task, length = section
            files += written
            gradient = gradient_sentences(ratios, task, length)
            atomic_write_text(folder / "gradient_flow.json", json.dumps(ratios, indent=1))
    total = sum(r.seconds for r in records)
    study = result.study
    intro = [
        f"Study **{study.name}**: {study.description}".rstrip(": "),
        f"{len(records)} runs ({len(study.seeds)} seeds each); this invocation took "
        f"{result.seconds:.0f} s of wall time ({len(result.ran)} runs trained, "
        f"{len(result.skipped)} found finished); the runs' own times add up to {total:.0f} s.",
    ]
    images = [p.relative_to(folder).as_posix() for p in files]
    md = [f"# {study.name}", "", *intro, "", "## Results", "", _md_table(rows), "",
          "## What the numbers show", ""]  # fmt: skip
    md += [f"- {s}" for s in sentences + gradient]
    md += ["", "## Plots", ""] + [f"![{Path(i).stem}]({i})" for i in images]
    atomic_write_text(folder / "report.md", "\n".join(md) + "\n")
    page = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(study.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(study.name)}</h1>",
        *(f"<p>{html.escape(p).replace('**', '')}</p>" for p in intro),
        "<h2>Results</h2>",
        _html_table(rows),
        "<h2>What the numbers show</h2><ul>",
        *(f"<li>{html.escape(s)}</li>" for s in sentences + gradient),
        "</ul><h2>Plots</h2>",
        *(f"<p><img src='{html.escape(i)}' alt='{html.escape(Path(i).stem)}'></p>" for i in images),
        "</body></html>",
    ]
    atomic_write_text(folder / "report.html", "\n".join(page) + "\n")
    files += [folder / "report.md", folder / "report.html"]
    return Report(rows, sentences, gradient, ratios, files)
