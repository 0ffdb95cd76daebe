"""Learning-rate schedules, each a plain function of (step, epoch) except reduce-on-plateau.

The trainer sets every parameter group's rate to ``lr * schedule.factor(step, epoch)`` before
each optimizer step, with ``step`` the 0-based index of that step and ``epoch`` the 0-based
epoch. The definitions (with ``e = epoch + 1``, ``S`` total steps, ``W`` warm-up steps):

==========  ===================================================================
constant    ``1``
step        ``factor ** -max(0, e - start_epoch)`` ("after epoch N, divide by X each epoch")
plateau     ``factor ** k`` after ``k`` reductions (one per ``patience`` + 1 evaluations
            without a relative improvement of ``threshold``), floored at ``min_lr / lr``
cosine      ``(s + 1) / W`` for ``s < W``, then
            ``m + (1 - m) * (1 + cos(pi * (s - W) / (S - W))) / 2`` with ``m = min_lr / lr``
budget      by progress ``p`` (the larger of the fraction of ``train.time_budget`` used and
            ``s / S``) and warm-up fraction ``w``: ``p / w`` for ``p < w``, then with
            ``q = (p - w) / (1 - w)`` a cosine ``m + (1 - m) * (1 + cos(pi * q)) / 2`` or a
            line ``m + (1 - m) * (1 - q)``
==========  ===================================================================

Only plateau has state (:meth:`state_dict`), kept in checkpoints; the budget schedule reads
the run's :class:`~rnnlab.training.budget.TimeBudget`, whose state the trainer keeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rnnlab.config import (
    BudgetSchedule,
    ConstantSchedule,
    CosineSchedule,
    PlateauSchedule,
    StepSchedule,
    TrainConfig,
)


class LRSchedule:
    """A learning-rate multiplier as a function of ``(step, epoch)``; see the module table."""

    def factor(self, step: int, epoch: int) -> float:
        """The multiplier of the base rate for 0-based ``step`` in 0-based ``epoch``."""
        return 1.0

    def on_evaluate(self, metrics: dict[str, float]) -> None:
        """Called with the validation metrics after every evaluation."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class StepDecay(LRSchedule):
    """After epoch ``start_epoch`` (1-based), divide the rate by ``divisor`` each epoch."""

    def __init__(self, start_epoch: int, divisor: float) -> None:
        self.start_epoch = start_epoch
        self.divisor = divisor

    def factor(self, step: int, epoch: int) -> float:
        return float(self.divisor ** -max(0, epoch + 1 - self.start_epoch))


class CosineWarmup(LRSchedule):
    """Linear warm-up over ``warmup_steps``, then a cosine from 1 to ``floor`` at the end."""

    def __init__(self, warmup_steps: int, total_steps: int, floor: float) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = max(total_steps, warmup_steps + 1)
        self.floor = floor

    def factor(self, step: int, epoch: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.floor + (1.0 - self.floor) * (1.0 + math.cos(math.pi * progress)) / 2.0


class BudgetDecay(LRSchedule):
    """Warm-up over the first ``warmup`` of the progress, then a cosine or linear decay
    from 1 to ``floor``; the progress in [0, 1] comes from ``progress(step)``."""

    def __init__(
        self, decay: str, warmup: float, floor: float, progress: Callable[[int], float]
    ) -> None:
        self.decay = decay
        self.warmup = warmup
        self.floor = floor
        self.progress = progress

    def factor(self, step: int, epoch: int) -> float:
        return self.at(self.progress(step))

    def at(self, progress: float) -> float:
        """The multiplier at ``progress`` (a fraction of the budget)."""
        p = min(1.0, max(0.0, progress))
        if p < self.warmup:
            return p / self.warmup
        q = (p - self.warmup) / (1.0 - self.warmup)
        shape = (1.0 + math.cos(math.pi * q)) / 2.0 if self.decay == "cosine" else 1.0 - q
        return self.floor + (1.0 - self.floor) * shape


class ReduceOnPlateau(LRSchedule):
    """Multiply the rate by ``multiplier`` after ``patience`` + 1 evaluations in a row without
    a relative improvement of ``threshold`` in ``metric``; never below ``floor``."""

    def __init__(
        self,
        metric: str,
        mode: str,
        multiplier: float,
        patience: int,
        threshold: float,
        floor: float,
    ) -> None:
        self.metric = metric
        self.mode = mode
        self.multiplier = multiplier
        self.patience = patience
        self.threshold = threshold
        self.floor = floor
        self.scale = 1.0
        self.best: float | None = None
        self.bad_evaluations = 0

    def factor(self, step: int, epoch: int) -> float:
        return self.scale

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - abs(self.best) * self.threshold
        return value > self.best + abs(self.best) * self.threshold

    def on_evaluate(self, metrics: dict[str, float]) -> None:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        if self._improved(value):
            self.best = value
            self.bad_evaluations = 0
            return
        self.bad_evaluations += 1
        if self.bad_evaluations > self.patience:
            self.scale = max(self.scale * self.multiplier, self.floor)
            self.bad_evaluations = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best, "bad_evaluations": self.bad_evaluations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = float(state["scale"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_evaluations = int(state["bad_evaluations"])


def build_schedule(
    train: TrainConfig, total_steps: int, budget_fraction: Callable[[], float] | None = None
) -> LRSchedule:
    """The schedule of ``train.schedule``; ``total_steps`` is the planned number of steps,
    ``budget_fraction`` the fraction of the time budget used (for kind ``budget``)."""
    spec = train.schedule
    if isinstance(spec, BudgetSchedule):
        seconds = train.time_budget_seconds or 1.0
        used = budget_fraction or (lambda: 0.0)
        return BudgetDecay(
            spec.decay,
            spec.warmup_fraction(seconds),
            spec.min_lr / train.lr,
            lambda step: max(used(), step / max(total_steps, 1)),
        )
    if isinstance(spec, ConstantSchedule):
        return LRSchedule()
    if isinstance(spec, StepSchedule):
        return StepDecay(spec.start_epoch, spec.factor)
    if isinstance(spec, CosineSchedule):
        return CosineWarmup(spec.warmup_steps, total_steps, spec.min_lr / train.lr)
    if isinstance(spec, PlateauSchedule):
        return ReduceOnPlateau(
            metric=spec.metric or train.monitor,
            mode=spec.mode or train.monitor_mode,
            multiplier=spec.factor,
            patience=spec.patience,
            threshold=spec.threshold,
            floor=spec.min_lr / train.lr,
        )
    raise TypeError(f"unhandled schedule {spec!r}")
