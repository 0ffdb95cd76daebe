"""The training log: running means of training metrics, and the ``metrics.jsonl`` file.

``metrics.jsonl`` has one JSON object per line, each with a ``kind``:

- ``train``: every ``train.log_every_steps`` steps: mean loss (and task batch metrics) over
  the interval, learning rate, mean pre-clip gradient norm, fraction of clipped steps,
  skipped non-finite batches, throughput (``<unit>_per_s``), elapsed seconds;
- ``eval``: every evaluation, with ``split`` and the task's metrics;
- ``epoch``: at the end of each epoch: mean training loss of the epoch and its duration;
- ``end``: when the run stops, with ``status``.

Every record has ``step`` (optimizer steps done) and ``epoch`` (1-based epoch it belongs to).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from rnnlab.io import atomic_write_text


class Meter:
    """Count-weighted running means of named values, plus step counters.

    ``update(values, count)`` adds ``values[k] * count`` to each sum; ``means()`` divides by
    the total count. Its state is plain numbers so that checkpoints can hold it.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0.0
        self.steps = 0
        self.clipped = 0
        self.skipped = 0
        self.grad_norm_sum = 0.0

    def update(self, values: dict[str, float], count: float) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * count
        self.count += count

    def means(self) -> dict[str, float]:
        if self.count == 0:
            return {}
        return {key: total / self.count for key, total in self.sums.items()}

    def add_step(
        self, values: dict[str, float], count: float, clipped: bool, grad_norm: float
    ) -> None:
        """One optimizer step: its values (weighted by ``count``), clipping, gradient norm."""
        self.update(values, count)
        self.steps += 1
        self.clipped += int(clipped)
        self.grad_norm_sum += grad_norm

    def add_skipped(self) -> None:
        """One batch skipped for its non-finite loss."""
        self.steps += 1
        self.skipped += 1

    def gradient_stats(self) -> dict[str, float]:
        """Over the steps taken (skipped batches left out): the mean pre-clip gradient norm,
        the fraction of clipped steps; and the number of skipped batches."""
        stepped = self.steps - self.skipped
        return {
            "grad_norm": self.grad_norm_sum / stepped if stepped else float("nan"),
            "clipped_fraction": self.clipped / stepped if stepped else 0.0,
            "skipped": self.skipped,
        }

    def train_record(self, step: int, epoch: int, lr: float) -> dict[str, Any]:
        """The ``train`` record of the interval: means, ``lr`` (the rate of its last step)
        and :meth:`gradient_stats`; the trainer adds throughput and elapsed time."""
        record: dict[str, Any] = {"kind": "train", "step": step, "epoch": epoch}
        record.update(self.means())
        record["lr"] = lr
        record.update(self.gradient_stats())
        return record

    def state_dict(self) -> dict[str, Any]:
        return {
            "sums": dict(self.sums),
            "count": self.count,
            "steps": self.steps,
            "clipped": self.clipped,
            "skipped": self.skipped,
            "grad_norm_sum": self.grad_norm_sum,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums = {str(k): float(v) for k, v in state["sums"].items()}
        self.count = float(state["count"])
        self.steps = int(state["steps"])
        self.clipped = int(state["clipped"])
        self.skipped = int(state["skipped"])
        self.grad_norm_sum = float(state["grad_norm_sum"])


def clean(value: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsFile:
    """Append-only ``metrics.jsonl`` writer (one flushed line per record)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({k: clean(v) for k, v in record.items()}, sort_keys=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()

    def truncate_after(self, step: int) -> None:
        """Drop records after ``step`` (written after the checkpoint a resume starts from)."""
        if not self.path.exists():
            return
        kept = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` (a last line cut by a crash is ignored)."""
    records: list[dict[str, Any]] = []
    source = Path(path)
    if not source.exists():
        return records
    for line in source.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
