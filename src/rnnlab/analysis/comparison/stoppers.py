"""Callbacks of a study run: its time budget, a target value reached, the step timer.

A stopped run is then tested on its best checkpoint as usual; its record's status says why
it stopped (``time_budget``, ``target_reached``). :class:`StepTimer` measures the training
steps alone, for the table's time per step.
"""

from __future__ import annotations

import time
from pathlib import Path

from rnnlab.analysis.conclusions import HIGHER_IS_BETTER, SOLVED
from rnnlab.training.callbacks import Callback
from rnnlab.training.protocol import StepInfo, TrainerView


class TimeBudget(Callback):
    """Stops a run once ``seconds`` of wall time have passed since it started."""

    name = "time_budget"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = 0.0

    def on_fit_start(self, trainer: TrainerView) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, trainer: TrainerView, info: StepInfo) -> None:
        if time.perf_counter() - self.start >= self.seconds:
            trainer.should_stop = True
            trainer.stop_reason = f"time budget of {self.seconds:g} s"


class StopAt(Callback):
    """Stops a run once the validation ``metric`` passes ``value``.

    Args:
        metric: a validation metric of the task.
        value: the value to pass.
        higher_is_better: pass above ``value`` (accuracies) or below it (errors).
    """

    name = "stop_at"

    def __init__(self, metric: str, value: float, higher_is_better: bool) -> None:
        self.metric = metric
        self.value = value
        self.higher_is_better = higher_is_better
        self.reached = False

    def on_evaluate(self, trainer: TrainerView, split: str, metrics: dict[str, float]) -> None:
        if split != "valid" or self.metric not in metrics:
            return
        current = metrics[self.metric]
        passed = current > self.value if self.higher_is_better else current < self.value
        if passed:
            self.reached = True
            trainer.should_stop = True
            trainer.stop_reason = f"valid {self.metric} {current:.4g} passed {self.value:g}"


def higher_is_better(task: str, metric: str) -> bool:
    """The direction of a metric: from the solved criteria, else from its name."""
    criterion = SOLVED.get((task, metric))
    return criterion.higher_is_better if criterion else metric in HIGHER_IS_BETTER


class StepTimer(Callback):
    """Times training steps, not set-up: the seconds between consecutive step ends.

    The first step is left out (it carries one-time costs: the native library's build or
    load, lazy allocations, the first batch's workers), and so is every interval in which
    something other than a step ran (an evaluation, a checkpoint, an epoch boundary), so
    :attr:`seconds_per_1000_steps` is the training loop's own rate.
    """

    name = "step_timer"

    def __init__(self) -> None:
        self.total = 0.0
        self.steps = 0
        self._last: float | None = None
        self._clean = False

    def _interrupt(self) -> None:
        self._clean = False

    def on_step_end(self, trainer: TrainerView, info: StepInfo) -> None:
        now = time.perf_counter()
        if self._last is not None and self._clean:
            self.total += now - self._last
            self.steps += 1
        self._last, self._clean = now, True

    def on_evaluate(self, trainer: TrainerView, split: str, metrics: dict[str, float]) -> None:
        self._interrupt()

    def on_checkpoint(self, trainer: TrainerView, kind: str, path: Path) -> None:
        self._interrupt()

    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None:
        self._interrupt()

    def on_epoch_end(self, trainer: TrainerView, epoch: int) -> None:
        self._interrupt()

    @property
    def seconds_per_1000_steps(self) -> float | None:
        """Seconds per 1,000 timed steps, or ``None`` before two clean steps."""
        return self.total / self.steps * 1000.0 if self.steps else None
