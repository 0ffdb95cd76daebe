"""A study's report: the table, plots and sentences generated from its numbers.

:func:`write_report` reads the records of
:func:`rnnlab.analysis.comparison.runner.run_study` and writes, in the study directory::

    report.md  report.html                  the same content, Markdown and HTML
    plots/curves_<task>.png                 validation metric against step, one line per cell
                                            (mean over seeds), one panel per length
    plots/length_<task>.png                 final test metric against sequence length
    plots/gradient_flow_init.png            ||dL/dh_t|| against t for each cell, at init
    plots/gradient_flow_trained.png         ... and for the trained models
    plots/claim_<name>.png                  per [[claims]] group (claim_report)
    gradient_flow.json                      the ratios ||dL/dh_1|| / ||dL/dh_T|| behind them

Every sentence of the report comes from :func:`rnnlab.analysis.conclusions.conclusions` or
:func:`~rnnlab.analysis.comparison.gradient_section.gradient_sentences`, i.e. from the
numbers: different numbers give different text.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.analysis.comparison.claim_report import (
    ClaimSection,
    claim_section,
    section_html,
    section_markdown,
)
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
    claims: list[ClaimSection] = field(default_factory=list)


def write_report(result: StudyResult, *, gradient_flow: bool = True) -> Report:
    """Write ``report.md``, ``report.html`` and the plots of a study into its directory.

    Args:
        result: what :func:`~rnnlab.analysis.comparison.runner.run_study` returned.
        gradient_flow: also diagnose the trained models (a few seconds per cell).
    """
    folder = result.out_dir
    plots = folder / "plots"
    records = [r for r in result.records if not r.group]
    rows = table_rows(records) if records else []
    sentences = conclusions(to_records(records)) if records else []
    files: list[Path] = []
    sections = [claim_section(c, result.records, plots) for c in result.study.claims]
    files += [s.plot for s in sections if s.plot is not None]
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
    total = sum(r.seconds for r in result.records if not r.shared_from)
    study = result.study
    intro = [
        f"Study **{study.name}**: {study.description}".rstrip(": "),
        f"{len(result.records)} runs ({len(study.seeds)} seeds each); this invocation took "
        f"{result.seconds:.0f} s of wall time ({len(result.ran)} runs trained, "
        f"{len(result.skipped)} found finished); the runs' own times add up to {total:.0f} s.",
    ]
    images = [p.relative_to(folder).as_posix() for p in files]
    md = [f"# {study.name}", "", *intro, ""]
    if rows:
        md += ["## Results", "", _md_table(rows), "", "## What the numbers show", ""]
        md += [f"- {s}" for s in sentences + gradient]
    if sections:
        md += ["", "## Claims", "", _CLAIMS_NOTE, ""]
        for part in sections:
            md += section_markdown(part, folder)
    grid_images = [
        i for i, p in zip(images, files, strict=True) if p not in {s.plot for s in sections}
    ]
    md += ["", "## Plots", ""] + [f"![{Path(i).stem}]({i})" for i in grid_images]
    atomic_write_text(folder / "report.md", "\n".join(md) + "\n")
    page = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(study.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(study.name)}</h1>",
        *(f"<p>{html.escape(p).replace('**', '')}</p>" for p in intro),
    ]
    if rows:
        page += [
            "<h2>Results</h2>",
            _html_table(rows),
            "<h2>What the numbers show</h2><ul>",
            *(f"<li>{html.escape(s)}</li>" for s in sentences + gradient),
            "</ul>",
        ]
    if sections:
        page += ["<h2>Claims</h2>", f"<p>{html.escape(_CLAIMS_NOTE)}</p>"]
        for part in sections:
            page += section_html(part, folder)
    claim_plots = {s.plot for s in sections}
    images = [i for i, p in zip(images, files, strict=True) if p not in claim_plots]
    page += [
        "<h2>Plots</h2>",
        *(f"<p><img src='{html.escape(i)}' alt='{html.escape(Path(i).stem)}'></p>" for i in images),
        "</body></html>",
    ]
    atomic_write_text(folder / "report.html", "\n".join(page) + "\n")
    files += [folder / "report.md", folder / "report.html"]
    claim_sentences = [s for section in sections for s in section.sentences]
    return Report(rows, sentences + claim_sentences, gradient, ratios, files, sections)


_CLAIMS_NOTE = (
    "Each claim compares its variants with the first (the reference) on the same budget. "
    "Verdicts: holds = the difference goes the claimed way and exceeds the seed spread "
    "(std of the reference + std of the variant); does not hold here = it exceeds the "
    "spread the other way; inconclusive = within the spread, or one seed. 'similar' holds "
    "within the stated tolerance. Time per step: training steps only (set-up, the first "
    "step and evaluations left out), median over seeds."
)
