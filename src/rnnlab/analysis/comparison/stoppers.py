"""Callbacks that end a study run early: its time budget, or a target value reached.

A stopped run is then tested on its best checkpoint as usual; its record's status says why
it stopped (``time_budget``, ``target_reached``).
"""

from __future__ import annotations

import time

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
