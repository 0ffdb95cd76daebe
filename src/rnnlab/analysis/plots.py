"""Figures for the analyses: gradient flow, gate statistics, hidden-state statistics.

Every function takes the data and an output path and writes a PNG atomically (temporary file
in the same folder, flushed, then renamed), so a reader never sees half a file. Figures are
drawn with matplotlib's Agg canvas on a ``Figure`` object, never through ``pyplot``'s global
state, so they work headless and from threads. Several models go side by side, one panel
each, keyed by their label (``{"tanh RNN": flow_rnn, "LSTM": flow_lstm, ...}``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rnnlab.analysis.gates import GateStat
from rnnlab.analysis.gradient_flow import GradientFlow
from rnnlab.analysis.hidden import HiddenStats
from rnnlab.io import atomic_write

PANEL_SIZE = (4.2, 3.4)
_TINY = 1e-45  # stands in for exact zeros on a log axis


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically; creates the parent folder.

    Returns:
        The path written.
    """
    FigureCanvasAgg(fig)
    return atomic_write(
        path, lambda handle: fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight")
    )


def _panels(count: int, title: str | None) -> tuple[Figure, list[Axes]]:
    if count < 1:
        raise ValueError("nothing to plot: pass at least one model")
    fig = Figure(figsize=(PANEL_SIZE[0] * count, PANEL_SIZE[1]), layout="constrained")
    axes = fig.subplots(1, count, squeeze=False)[0]
    if title:
        fig.suptitle(title)
    return fig, list(axes)


def plot_gradient_flow(
    flows: Mapping[str, GradientFlow],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    cell_state: bool = True,
) -> Path:
    """Gradient norm ``mean_b ||dL/dh_t||`` against the step ``t``, log scale, one panel per model.

    Each panel has one line per layer/direction row (dashed: the LSTM cell state ``dL/dc_t``
    when ``cell_state``), and its legend gives the ratio ``||dL/dh_1|| / ||dL/dh_T||``. The
    panels share their y axis, so the cells compare at a glance.

    Args:
        flows: model label -> :class:`GradientFlow`.
        path: the PNG to write.
        title: figure title.
        cell_state: also draw the LSTM cell-state norms.
    """
    fig, axes = _panels(len(flows), title)
    low, high = math.inf, 0.0
    for ax, (label, flow) in zip(axes, flows.items(), strict=True):
        steps = list(range(1, flow.steps + 1))
        for r, row in enumerate(flow.rows):
            norms = flow.hidden[r].clamp_min(_TINY).tolist()
            ax.plot(steps, norms, label=f"h {row} (ratio {flow.ratio(row):.2g})")
            positive = [v for v in norms if v > _TINY]
            if positive:
                low, high = min(low, min(positive)), max(high, max(positive))
            if cell_state and flow.cell is not None:
                ax.plot(steps, flow.cell[r].clamp_min(_TINY).tolist(), "--", label=f"c {row}")
        ax.set_yscale("log")
        ax.set_title(label)
        ax.set_xlabel("time step t")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_ylabel("mean ||dL/dh_t||")
    if high > 0:
        for ax in axes:
            ax.set_ylim(low / 2, high * 2)
    return save_figure(fig, path)


def plot_gate_statistics(
    stats: Mapping[str, Sequence[GateStat]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Bars of each gate's mean activation and fraction saturated, one panel per model.

    Args:
        stats: model label -> its :class:`GateStat` list (from ``gate_statistics``).
        path: the PNG to write.
        title: figure title.
    """
    fig, axes = _panels(len(stats), title)
    width = 0.4
    for ax, (label, items) in zip(axes, stats.items(), strict=True):
        names = [f"{s.row}\n{s.gate}" for s in items]
        xs = list(range(len(items)))
        ax.bar([x - width / 2 for x in xs], [s.mean for s in items], width, label="mean")
        ax.bar([x + width / 2 for x in xs], [s.saturated for s in items], width, label="saturated")
        ax.set_xticks(xs, names, fontsize="small")
        ax.set_ylim(min(0.0, *(s.mean for s in items)) - 0.05, 1.05)
        ax.axhline(0.0, color="black", linewidth=0.5)
        ax.set_title(label)
        ax.legend(fontsize="small")
    return save_figure(fig, path)


def plot_hidden_statistics(
    stats: Mapping[str, HiddenStats],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Mean of ``h_t`` with a band of one standard deviation over time, one panel per model.

    Args:
        stats: model label -> :class:`HiddenStats`.
        path: the PNG to write.
        title: figure title.
    """
    fig, axes = _panels(len(stats), title)
    for ax, (label, item) in zip(axes, stats.items(), strict=True):
        steps = list(range(1, item.mean.shape[1] + 1))
        for r, row in enumerate(item.rows):
            mean, std = item.mean[r], item.std[r]
            (line,) = ax.plot(steps, mean.tolist(), label=f"{row} mean")
            ax.fill_between(
                steps,
                (mean - std).tolist(),
                (mean + std).tolist(),
                alpha=0.25,
                color=line.get_color(),
                label=f"{row} ± std",
            )
        ax.set_title(label)
        ax.set_xlabel("time step t")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_ylabel("h_t over batch and units")
    return save_figure(fig, path)
