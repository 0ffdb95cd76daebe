"""A study's report: the table, plots and sentences generated from its numbers.

:func:`write_report` reads the records of
:func:`rnnlab.analysis.comparison.runner.run_study` and writes, in the study directory::

    report.md  report.html                  the same content, Markdown and HTML
    plots/curves_<task>.png                 validation metric against step, one line per cell
                                            (mean over seeds), one panel per length
    plots/length_<task>.png                 final test metric against sequence length
    plots/gradient_flow_init.png            ||dL/dh_t|| against t for each cell, at init
    plots/gradient_flow_trained.png         ... and for the trained models
    gradient_flow.json                      the ratios ||dL/dh_1|| / ||dL/dh_T|| behind them

Every sentence of the report comes from :func:`rnnlab.analysis.conclusions.conclusions` or
:func:`~rnnlab.analysis.comparison.gradient_section.gradient_sentences`, i.e. from the
numbers: different numbers give different text.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rnnlab.analysis.comparison.gradient_section import gradient_flow_section, gradient_sentences
from rnnlab.analysis.comparison.records import StudyResult
from rnnlab.analysis.comparison.study_plots import plot_curves, plot_lengths
from rnnlab.analysis.comparison.table import Row, table_rows, to_records
from rnnlab.analysis.conclusions import conclusions, metric_name
from rnnlab.io import atomic_write_text

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
        result: what :func:`~rnnlab.analysis.comparison.runner.run_study` returned.
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
