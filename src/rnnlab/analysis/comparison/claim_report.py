"""The claims section of a study report: per claim a table, a plot and its sentences.

For each ``[[claims]]`` group (:mod:`~rnnlab.analysis.comparison.claim_spec`) the runs are
summarized per variant over their seeds (:class:`~.claim_sentences.ArmStats`), every variant
is compared with the reference (:func:`~.claim_sentences.claim_sentence`), and a sweep gets
one sentence on whether its settings matter. Written into ``plots/``::

    claim_<name>.png    the compared metric per variant (mean ± std over seeds; hollow
                        markers: the training batches), or for a sweep, the metric against
                        the first setting, a line per value of the second, a panel per
                        value of the third
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rnnlab.analysis.comparison.claim_sentences import (
    ArmStats,
    claim_sentence,
    number,
    pm,
    sweep_sentence,
    verdict,
)
from rnnlab.analysis.comparison.claim_spec import Claim
from rnnlab.analysis.comparison.records import RunRecord
from rnnlab.analysis.comparison.stoppers import higher_is_better
from rnnlab.analysis.conclusions import metric_name
from rnnlab.analysis.plots import save_figure


@dataclass
class ClaimSection:
    """One claim's part of the report."""

    claim: Claim
    header: list[str]
    rows: list[list[str]]
    sentences: list[str]
    plot: Path | None = None
    arms: list[ArmStats] = field(default_factory=list)


def _value(record: RunRecord, split: str, metric: str) -> float | None:
    source = {"valid": record.valid, "test": record.test, "train": record.train}[split]
    found = source.get(metric)
    return None if found is None else float(found)


def _stats(claim: Claim, name: str, items: Sequence[RunRecord], split: str) -> ArmStats | None:
    values = [v for r in items if (v := _value(r, split, claim.metric)) is not None]
    if not values:
        return None
    train = [v for r in items if (v := _value(r, "train", claim.metric)) is not None]
    return ArmStats.of(
        name,
        values,
        train if len(train) == len(values) else (),
        items[0].parameters,
        [r.seconds_per_1000_steps for r in items],
    )


def _by_variant(claim: Claim, records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    mine: dict[str, list[RunRecord]] = {a.name: [] for a in claim.arms()}
    for r in records:
        if r.group == claim.name and r.variant in mine:
            mine[r.variant].append(r)
    return {k: v for k, v in mine.items() if v}


def _cell(stats: ArmStats | None) -> str:
    return "-" if stats is None else pm(stats).replace(" (one seed)", "")


def claim_section(claim: Claim, records: Sequence[RunRecord], plots: Path) -> ClaimSection:
    """Summarize, compare and plot one claim's runs."""
    groups = _by_variant(claim, records)
    measure = f"{claim.split} {metric_name(claim.metric)}"
    higher = (
        higher_is_better(next(iter(groups.values()))[0].task, claim.metric) if groups else False
    )
    arms = [s for n, g in groups.items() if (s := _stats(claim, n, g, claim.split)) is not None]
    by_name = {a.name: a for a in arms}
    variants = {v.name: v for v in claim.arms()}
    ref = arms[0] if arms and claim.kind == "ablation" else None
    sentences = []
    header = ["variant", "cell", "parameters", "s / 1000 steps (median)", "steps",
              f"train {metric_name(claim.metric)}", f"valid {metric_name(claim.metric)}",
              f"test {metric_name(claim.metric)}", "gap", "verdict"]  # fmt: skip
    rows = []
    for name, items in groups.items():
        stats = by_name.get(name)
        train = _stats(claim, name, items, "train")
        valid = _stats(claim, name, items, "valid")
        test = _stats(claim, name, items, "test")
        expect = variants[name].expect if name in variants else None
        said = "reference" if ref is not None and name == ref.name else "-"
        if ref is not None and stats is not None and expect is not None and name != ref.name:
            said = verdict(ref, stats, expect, claim.tolerance)
            sentences.append(
                claim_sentence(claim.domain, measure, ref, stats, expect, claim.tolerance)
            )
        gap = "-"
        if stats is not None and stats.gap is not None:
            gap = number(stats.gap, stats.mean)
        rows.append(
            [name, items[0].cell, f"{items[0].parameters:,}",
             f"{statistics.median(r.seconds_per_1000_steps for r in items):.1f}",
             f"{statistics.median(r.steps for r in items):.0f}",
             _cell(train), _cell(valid), _cell(test), gap, said]
        )  # fmt: skip
    if claim.kind == "sweep" and arms:
        sentences.append(sweep_sentence(claim.domain, measure, arms, higher))
    plot = None
    if arms:
        path = plots / f"claim_{claim.name}.png"
        plot = (
            _plot_sweep(claim, groups, path) if claim.kind == "sweep" else _plot(claim, arms, path)
        )
    return ClaimSection(claim, header, rows, sentences, plot, arms)


def _plot(claim: Claim, arms: Sequence[ArmStats], path: Path) -> Path:
    fig = Figure(figsize=(max(4.0, 1.1 * len(arms) + 1.5), 3.4), layout="constrained")
    ax = fig.subplots()
    xs = list(range(len(arms)))
    ax.errorbar(xs, [a.mean for a in arms], yerr=[a.std for a in arms], fmt="o", capsize=4,
                label=f"{claim.split} (mean ± std over seeds)")  # fmt: skip
    trained = [(x, a.train_mean) for x, a in zip(xs, arms, strict=True) if a.train_mean]
    if trained:
        ax.plot([t[0] for t in trained], [t[1] for t in trained], "o", mfc="none",
                label="train batches")  # fmt: skip
    ax.set_xticks(xs, [a.name for a in arms], rotation=20, ha="right")
    ax.set_ylabel(f"{metric_name(claim.metric)}")
    ax.set_title(claim.title or f"{claim.domain}: {claim.name}")
    finite = [a.mean for a in arms if math.isfinite(a.mean) and a.mean > 0]
    if finite and max(finite) > 10 * min(finite):
        ax.set_yscale("log")  # one arm far off (a tanh RNN, a diverged run)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def _setting(record: RunRecord, dotted: str) -> Any:
    # the sweep's value of a run: its variant name holds "key=value" for every key
    key = dotted.split(".")[1]
    for part in record.variant.split(" "):
        name, _, value = part.partition("=")
        if name == key:
            return float(value)
    return None


def _plot_sweep(claim: Claim, groups: dict[str, list[RunRecord]], path: Path) -> Path:
    keys = list(claim.sweep)
    panels = claim.sweep[keys[2]] if len(keys) > 2 else [None]
    lines = claim.sweep[keys[1]] if len(keys) > 1 else [None]
    fig = Figure(figsize=(4.0 * len(panels), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, panel in zip(axes, panels, strict=True):
        for line in lines:
            points = []
            for items in groups.values():
                first = items[0]
                if len(keys) > 2 and _setting(first, keys[2]) != float(str(panel)):
                    continue
                if len(keys) > 1 and _setting(first, keys[1]) != float(str(line)):
                    continue
                values = [v for r in items if (v := _value(r, claim.split, claim.metric))]
                if values:
                    std = statistics.stdev(values) if len(values) > 1 else 0.0
                    points.append((_setting(first, keys[0]), statistics.fmean(values), std))
            points.sort()
            if points:
                label = None if line is None else f"{keys[1].split('.')[1]}={line}"
                xs, ys, err = zip(*points, strict=True)
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_xlabel(keys[0].split(".")[1])
        if panel is not None:
            ax.set_title(f"{keys[2].split('.')[1]}={panel}")
        ax.grid(True, which="both", alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize="small")
    axes[0].set_ylabel(f"{claim.split} {metric_name(claim.metric)}")
    fig.suptitle(claim.title or f"{claim.domain}: {claim.name}")
    return save_figure(fig, path)


def section_markdown(section: ClaimSection, folder: Path) -> list[str]:
    """The claim's Markdown: heading, claim, table, sentences, plot."""
    claim = section.claim
    lines = [f"### {claim.title or claim.name}", ""]
    if claim.claim:
        lines += [f"Claim: {claim.claim}.", ""]
    lines.append("| " + " | ".join(section.header) + " |")
    lines.append("|" + "---|" * len(section.header))
    lines += ["| " + " | ".join(row) + " |" for row in section.rows]
    lines += [""] + [f"- {s}" for s in section.sentences]
    if section.plot is not None:
        rel = section.plot.relative_to(folder).as_posix()
        lines += ["", f"![{section.plot.stem}]({rel})"]
    return [*lines, ""]


def section_html(section: ClaimSection, folder: Path) -> list[str]:
    """The claim's HTML: the same content as :func:`section_markdown`."""
    claim = section.claim
    out = [f"<h3>{html.escape(claim.title or claim.name)}</h3>"]
    if claim.claim:
        out.append(f"<p>Claim: {html.escape(claim.claim)}.</p>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in section.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in section.rows
    )
    out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out += ["<ul>", *(f"<li>{html.escape(s)}</li>" for s in section.sentences), "</ul>"]
    if section.plot is not None:
        rel = html.escape(section.plot.relative_to(folder).as_posix())
        out.append(f"<p><img src='{rel}' alt='{html.escape(section.plot.stem)}'></p>")
    return out
