"""What a checkpoint keeps of a run's moving parts, and how a resume puts them back.

:class:`RunState` gathers the objects whose state changes while training (the model, the
optimizer, the loss scaler, the schedule, the callbacks and the running means) and turns
them into the state-dict part of a checkpoint and back. The trainer adds its position
(step, epoch, batch, best value), the RNG states and the config; see
:mod:`rnnlab.training.checkpoint` for the whole payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.training.callbacks import Callback
from rnnlab.training.checkpoint import load_model_state
from rnnlab.training.metrics_log import Meter
from rnnlab.training.schedules import LRSchedule


@dataclass
class RunState:
    """The stateful objects of one run.

    Attributes:
        model: the (unwrapped) model.
        optimizer: its optimizer.
        scaler: the fp16 loss scaler, or ``None``.
        schedule: the learning-rate schedule.
        callbacks: every callback (a callback's state is stored under its ``name``).
        interval, epoch_meter: running means of the logging interval and of the epoch.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    schedule: LRSchedule
    callbacks: Sequence[Callback]
    interval: Meter
    epoch_meter: Meter

    def state_dicts(self) -> dict[str, Any]:
        """The checkpoint entries ``model``, ``optimizer``, ``scaler``, ``schedule``,
        ``callbacks`` and ``meters``."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "schedule": self.schedule.state_dict(),
            "callbacks": {c.name: c.state_dict() for c in self.callbacks},
            "meters": {
                "interval": self.interval.state_dict(),
                "epoch": self.epoch_meter.state_dict(),
            },
        }

    def load(self, payload: dict[str, Any], source: Path) -> None:
        """Restore every object from a checkpoint ``payload`` read from ``source``.

        Raises:
            CheckpointError: the weights do not fit the model (naming ``source``).
        """
        load_model_state(self.model, payload["model"], source)
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scaler is not None and payload["scaler"] is not None:
            self.scaler.load_state_dict(payload["scaler"])
        self.schedule.load_state_dict(payload["schedule"])
        states = payload["callbacks"]
        for callback in self.callbacks:
            if callback.name in states:
                callback.load_state_dict(states[callback.name])
        self.interval.load_state_dict(payload["meters"]["interval"])
        self.epoch_meter.load_state_dict(payload["meters"]["epoch"])


def tensors_only(state: Any) -> Any:
    """A task's carried state if it is made of tensors (else ``None``), detached, on CPU."""
    if isinstance(state, Tensor):
        return state.detach().cpu()
    if isinstance(state, tuple | list) and state and all(isinstance(s, Tensor) for s in state):
        return [s.detach().cpu() for s in state]
    return None
