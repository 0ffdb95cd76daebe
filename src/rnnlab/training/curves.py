"""The time-to-quality curve of a run: its validation metric against training wall time.

Every validation record in ``metrics.jsonl`` carries ``elapsed_seconds`` (training wall
time, earlier sessions of a resumed run included). At the end of a run with a time budget
:class:`TimeToQuality` draws ``plots/time_to_quality.png``: perplexity when the task reports
it (word-level language models), else the monitored metric (``train.monitor``), against
minutes (or seconds for runs under two minutes), with the budget as a dashed line.
matplotlib is imported only when the plot is drawn.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from rnnlab.config import ExperimentConfig
from rnnlab.io import atomic_write
from rnnlab.training.callbacks import Callback
from rnnlab.training.metrics_log import read_metrics
from rnnlab.training.protocol import TrainerView

PLOT = Path("plots") / "time_to_quality.png"


def curve_metric(records: list[dict[str, Any]], monitor: str) -> str:
    """``perplexity`` when the validation records have it, else ``monitor``."""
    valid = [r for r in records if r.get("kind") == "eval" and r.get("split") == "valid"]
    if valid and all("perplexity" in r for r in valid):
        return "perplexity"
    return monitor


def curve_points(records: list[dict[str, Any]], metric: str) -> list[tuple[float, float]]:
    """``(elapsed_seconds, metric)`` of each validation record with both, finite."""
    points = []
    for record in records:
        if record.get("kind") != "eval" or record.get("split") != "valid":
            continue
        x, y = record.get("elapsed_seconds"), record.get(metric)
        if isinstance(x, int | float) and isinstance(y, int | float) and math.isfinite(y):
            points.append((float(x), float(y)))
    return points


def write_time_to_quality(
    metrics_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    monitor: str,
    budget_seconds: float | None = None,
) -> Path | None:
    """Draw the curve of ``metrics_path`` into the PNG ``out`` (atomically).

    Returns:
        ``out``, or ``None`` when the run has no validation record with a time.
    """
    records = read_metrics(metrics_path)
    metric = curve_metric(records, monitor)
    points = curve_points(records, metric)
    if not points:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    longest = max([x for x, _ in points] + [budget_seconds or 0.0])
    scale, unit = (60.0, "minutes") if longest >= 120 else (1.0, "seconds")
    fig = Figure(figsize=(6.0, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([x / scale for x, _ in points], [y for _, y in points], marker="o", markersize=3)
    if budget_seconds is not None:
        ax.axvline(budget_seconds / scale, color="grey", linestyle="--", label="time budget")
        ax.legend(loc="best")
    if metric == "perplexity" and min(y for _, y in points) > 0:
        ax.set_yscale("log")
    ax.set_xlabel(f"training wall time ({unit})")
    ax.set_ylabel(f"valid {metric}")
    ax.set_title("time to quality")
    ax.grid(True, alpha=0.3)
    return atomic_write(
        out, lambda handle: fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    )


class TimeToQuality(Callback):
    """At the end of the run (main process), write ``<run>/plots/time_to_quality.png``."""

    name = "time_to_quality"

    def __init__(self, monitor: str, budget_seconds: float | None) -> None:
        self.monitor = monitor
        self.budget_seconds = budget_seconds

    def on_fit_end(self, trainer: TrainerView, status: str) -> None:
        run_dir = Path(trainer.run_dir)
        write_time_to_quality(
            run_dir / "metrics.jsonl", run_dir / PLOT, self.monitor, self.budget_seconds
        )


def time_to_quality(config: ExperimentConfig, *, main: bool) -> list[Callback]:
    """The curve's callback for a run with a time budget, on the main process; else none."""
    train = config.train
    if not main or train.time_budget is None:
        return []
    return [TimeToQuality(train.monitor, train.time_budget_seconds)]
