"""A wall-time budget for training (``train.time_budget``): how much is used, when to stop.

The budget counts wall time from the start of :meth:`Trainer.fit
<rnnlab.training.trainer.Trainer.fit>` (data set-up, steps, evaluations and checkpoints
alike). Checkpoints keep the time spent so far, so a resumed run continues its budget
instead of starting a fresh one (time after the last checkpoint of a killed run is lost).

Stopping early enough: after every optimizer step the trainer asks :meth:`TimeBudget.must_stop`,
which answers yes once another step would leave too little time for what follows the last
step: one validation (with ``best.pt``), ``last.pt``, and the final test. Those are
estimated from the last measured evaluation and checkpoint, times :data:`MARGIN`, plus
:data:`SLACK` of the budget; the time
of a step is the mean of the steps measured in this process. Until an evaluation has been
measured the trainer evaluates once (after the first step of a budgeted run) to measure it.

At least one step is always taken: a budget shorter than a step trains one step, evaluates,
checkpoints and tests, and the end record shows the time used beyond the budget.

``now`` is the clock; tests replace it (``monkeypatch.setattr(budget, "now", fake)``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MARGIN = 1.5
"""How much longer than last measured the final evaluation and checkpoints are assumed to take."""
SLACK = 0.01
"""The fraction of the budget also kept back (loading ``best.pt``, the end record, jitter)."""


def now() -> float:
    """The budget's clock, in seconds (monotonic)."""
    return time.monotonic()


class TimeBudget:
    """The training time used, against ``seconds`` (``None``: no budget, only measured).

    Attributes:
        seconds: the budget, or ``None``.
        spent_before: training time of earlier sessions of this run (from the checkpoint).
        evaluate_seconds, checkpoint_seconds: the last measured validation (with its
            ``best.pt``) and ``last.pt`` write; ``None`` until measured.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.spent_before = 0.0
        self.evaluate_seconds: float | None = None
        self.checkpoint_seconds: float | None = None
        self._start: float | None = None
        self._mark: float | None = None
        self._blocked = 0.0  # seconds of measured blocks since the last mark
        self._depth = 0
        self._step_total = 0.0
        self._steps = 0

    @property
    def active(self) -> bool:
        """Whether a budget is set."""
        return self.seconds is not None

    def start(self) -> None:
        """Start this session's clock (at the start of ``fit``)."""
        self._start = now()

    def elapsed(self) -> float:
        """Training wall time of the run so far, earlier sessions included."""
        return self.spent_before + (0.0 if self._start is None else now() - self._start)

    def reserve(self) -> float:
        """Seconds kept for the last validation, ``last.pt`` and the final test."""
        evaluate = self.evaluate_seconds or 0.0
        kept = MARGIN * (2.0 * evaluate + (self.checkpoint_seconds or 0.0))
        return kept + SLACK * (self.seconds or 0.0)

    def step_seconds(self) -> float:
        """Mean wall time of one optimizer step measured in this session (0 before any)."""
        return self._step_total / self._steps if self._steps else 0.0

    def fraction(self) -> float:
        """The fraction of the training time used, in [0, 1]: elapsed time against the
        budget less :meth:`reserve` (0 without a budget)."""
        if self.seconds is None:
            return 0.0
        horizon = max(self.seconds - self.reserve(), 1e-9)
        return min(1.0, max(0.0, self.elapsed() / horizon))

    def wants_evaluation(self) -> bool:
        """Whether the trainer should evaluate now to measure what an evaluation costs."""
        return self.active and self.evaluate_seconds is None

    def must_stop(self) -> bool:
        """Called once after every step: record its time; whether another step would leave
        too little of the budget for the final evaluation, test and checkpoint."""
        moment = now()
        if self._mark is not None:
            self._step_total += max(0.0, moment - self._mark - self._blocked)
            self._steps += 1
        self._mark, self._blocked = moment, 0.0
        if self.seconds is None:
            return False
        return self.elapsed() + self.step_seconds() + self.reserve() >= self.seconds

    def exhausted(self) -> bool:
        """Whether earlier sessions left nothing for another step (a resumed run that used
        its budget)."""
        return self.seconds is not None and self.spent_before + self.reserve() >= self.seconds

    @contextmanager
    def measuring(self, what: str) -> Iterator[None]:
        """Time a block: ``"evaluate"`` or ``"checkpoint"`` (nested blocks count once)."""
        began = now()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            took = now() - began
            if what == "evaluate":
                self.evaluate_seconds = took
            else:
                self.checkpoint_seconds = took
            if self._depth == 0:
                self._blocked += took

    def summary(self) -> dict[str, Any]:
        """The end record's fields: ``elapsed_seconds`` and, with a budget,
        ``time_budget_seconds``."""
        out: dict[str, Any] = {"elapsed_seconds": round(self.elapsed(), 3)}
        if self.seconds is not None:
            out["time_budget_seconds"] = self.seconds
        return out

    def state_dict(self) -> dict[str, Any]:
        """Kept in checkpoints: the time spent and the measured costs."""
        return {
            "elapsed": self.elapsed(),
            "evaluate": self.evaluate_seconds,
            "checkpoint": self.checkpoint_seconds,
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Continue from a checkpoint's state (``None``: a checkpoint written before budgets)."""
        if not state:
            return
        self.spent_before = float(state["elapsed"])
        evaluate, checkpoint = state.get("evaluate"), state.get("checkpoint")
        self.evaluate_seconds = None if evaluate is None else float(evaluate)
        self.checkpoint_seconds = None if checkpoint is None else float(checkpoint)
