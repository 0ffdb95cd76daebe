"""The study's figures: validation curves and final metric against sequence length.

Written into the study directory's ``plots/``::

    curves_<task>.png     validation metric against step, one line per configuration
                          (mean over seeds), one panel per length
    length_<task>.png     final test metric against sequence length
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from rnnlab.analysis.comparison.records import RunRecord
from rnnlab.analysis.comparison.table import label_of, table_rows, varied_settings
from rnnlab.analysis.conclusions import cell_name, metric_name
from rnnlab.analysis.plots import save_figure

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
