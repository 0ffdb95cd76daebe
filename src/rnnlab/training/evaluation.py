"""Evaluating a model on a split, and whether a monitored value improved on the best."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from rnnlab.training.devices import autocast

if TYPE_CHECKING:
    from rnnlab.tasks.base import Task


def evaluate_model(
    task: Task, model: nn.Module, loader: Iterable[Any], precision: str, device: torch.device
) -> dict[str, float]:
    """The task's metrics of ``model`` on ``loader``, in eval mode, without gradients, under
    the autocast of ``precision``; the model's training mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast(precision, device):
            return {k: float(v) for k, v in task.evaluate(model, loader).items()}
    finally:
        model.train(was_training)


def improves(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` is better than ``best`` (lower for ``min``, higher for ``max``);
    any value improves on no best yet."""
    if best is None:
        return True
    return value < best if mode == "min" else value > best
