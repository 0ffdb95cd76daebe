"""What the trainer shows its callbacks: the per-step record and the trainer's face.

Callbacks (``rnnlab.training.callbacks``, the pruning callback in ``rnnlab.tuning``, the
study stoppers in ``rnnlab.analysis``) are called with the trainer itself, but they see it
through :class:`TrainerView`: the few attributes they read or set. The trainer imports the
callbacks; the callbacks import only this module, so the two do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass
class StepInfo:
    """What happened in one optimizer step."""

    step: int
    epoch: int
    batch: int
    loss: float
    lr: float
    grad_norm: float
    clipped: bool
    skipped: bool
    count: float


class TrainerView(Protocol):
    """The part of :class:`~rnnlab.training.trainer.Trainer` that callbacks use.

    Attributes:
        run_dir: the run directory.
        unit: what the task counts in throughput (``tokens``, ``sequences``, ...).
        step, epoch: optimizer steps done and the 0-based epoch.
        total_steps: the planned optimizer steps.
        should_stop, stop_reason: a callback stops training by setting both.
    """

    run_dir: Path
    unit: str
    step: int
    epoch: int
    total_steps: int
    should_stop: bool
    stop_reason: str

    def metric(self, metrics: dict[str, float], name: str, setting: str) -> float:
        """``metrics[name]``, or a clear error naming the setting that asked for it."""
        ...

    def console_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """The task's short selection of ``metrics`` for console lines."""
        ...
