"""How long a run trains and how it ends: the planned steps, the end status, the result.

``train.epochs`` and ``train.max_steps`` may both be set; the run stops at whichever comes
first, or at ``train.time_budget`` (a run with only a budget plans :data:`UNBOUNDED` steps).
A run that stops early (early stopping, a study's budget, a pruner) ends ``early_stopped``;
one stopped by its time budget ends ``time_budget``; one that reached ``max_steps`` before
its epochs ends ``max_steps``; otherwise ``completed``.
:meth:`~rnnlab.training.trainer.Trainer.fit` returns a :class:`FitResult`; a run stopped by
a non-finite loss or a signal says so with the messages built here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.config import TrainConfig
from rnnlab.config.durations import format_duration
from rnnlab.errors import RunDirError
from rnnlab.training.budget import TimeBudget


@dataclass
class FitResult:
    """What :meth:`~rnnlab.training.trainer.Trainer.fit` returns.

    Attributes:
        run_dir: the run directory.
        status: ``completed``, ``max_steps``, ``early_stopped``, ``time_budget``.
        step, epoch: optimizer steps done and epochs completed.
        best: the best value of ``train.monitor`` on the validation split.
        valid: the last validation metrics.
        test: test metrics of ``best.pt``, or of the last weights when the run has no best
            checkpoint (empty when the task has no test split).
        test_checkpoint: ``"best.pt"`` or ``"last.pt"``: what ``test`` was measured with.
        test_shown: the task's short selection of ``test`` for a console line.
    """

    run_dir: Path
    status: str
    step: int
    epoch: int
    best: float | None
    valid: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    test_checkpoint: str = "best.pt"
    test_shown: dict[str, float] = field(default_factory=dict)


UNBOUNDED = sys.maxsize
"""The planned steps of a run bounded only by its time budget."""


def planned_steps(train: TrainConfig, steps_per_epoch: int) -> int:
    """The optimizer steps a run plans: the fewer of ``max_steps`` and ``epochs`` epochs
    (:data:`UNBOUNDED` when neither is set: a run with only a time budget)."""
    planned = [train.max_steps] if train.max_steps else [UNBOUNDED]
    if train.epochs:
        planned.append(train.epochs * steps_per_epoch)
    return min(planned)


def end_status(
    train: TrainConfig, step: int, steps_per_epoch: int, stopped: bool, out_of_time: bool = False
) -> str:
    """``early_stopped`` (a callback stopped the run), ``time_budget``, ``max_steps`` or
    ``completed``."""
    if stopped:
        return "early_stopped"
    if out_of_time:
        return "time_budget"
    if (
        train.max_steps
        and step >= train.max_steps
        and (train.epochs is None or step < train.epochs * steps_per_epoch)
    ):
        return "max_steps"
    return "completed"


def check_can_continue(run_dir: Path, step: int, total_steps: int, budget: TimeBudget) -> None:
    """Refuse to continue a run that has done its planned steps or used its time budget.

    Raises:
        RunDirError: naming the setting to raise.
    """
    if step >= total_steps:
        raise RunDirError(
            f"run {run_dir} is already complete at step {step}; raise "
            "train.epochs or train.max_steps (--set) to continue it"
        )
    if step > 0 and budget.seconds is not None and budget.exhausted():
        raise RunDirError(
            f"run {run_dir} has used its time budget ({format_duration(budget.spent_before)} "
            f"of {format_duration(budget.seconds)}, with the time kept for the final "
            "evaluation); raise train.time_budget (--set or --budget) to continue it"
        )


def nonfinite_message(value: float, where: str, last_good: Path | None) -> str:
    """The message of a run stopped by a non-finite loss ``value`` at ``where``."""
    last = (
        f"the last good checkpoint is {last_good} (left intact)"
        if last_good is not None
        else "no checkpoint was written yet"
    )
    return (
        f"loss is {value} at {where}; {last}. Lower train.lr, set train.grad_clip_norm, "
        "or set train.skip_nonfinite = true to skip such batches"
    )


def interrupted_message(name: str, step: int, last: Path, run_dir: str) -> str:
    """The message of a run stopped by signal ``name`` after ``step``, saved to ``last``."""
    return (
        f"{name} received: stopped after step {step} and saved {last}; resume with: "
        f"rnnlab train --resume {run_dir}"
    )
