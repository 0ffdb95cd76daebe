"""One optimizer step: forward through the task's ``step``, backward, clipping, update.

The step is split in two around the decision the trainer takes on every DDP process alike
(a non-finite loss or a stop signal anywhere)::

    outcome = stepper.forward_backward(batch, state, lr)   lr set; autocast; backward;
                                                            pre-clip norm; one host sync
    ... decide ...
    clipped = stepper.apply(outcome.grad_norm)              clip by value; optimizer step
    stepper.discard()                                       or: drop the gradients
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from rnnlab.config import TrainConfig
from rnnlab.training.devices import autocast

if TYPE_CHECKING:
    from rnnlab.tasks.base import Task


@dataclass
class StepOutcome:
    """What the forward and backward pass of one batch gave.

    Attributes:
        loss: the batch loss.
        grad_norm: the total gradient norm before clipping.
        metrics: the task's batch metrics, tensors turned into floats.
        state: the task's carried state after the batch.
        count: what the batch counts for in the running means (``metrics["count"]``, else 1).
    """

    loss: float
    grad_norm: float
    metrics: dict[str, Any]
    state: Any
    count: float


class OptimizerStep:
    """The optimizer steps of one run.

    Args:
        task: the task (its ``step`` computes the loss).
        train_model: the model that runs forward (DDP-wrapped under ``torchrun``).
        model: the unwrapped model (its parameters are clipped).
        optimizer: the optimizer.
        scaler: the fp16 loss scaler, or ``None``.
        train: the ``[train]`` settings (precision, clipping).
        device: where the model is.
    """

    def __init__(
        self,
        task: Task,
        train_model: nn.Module,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
        train: TrainConfig,
        device: torch.device,
    ) -> None:
        self.task = task
        self.train_model = train_model
        self.model = model
        self.optimizer = optimizer
        self.scaler = scaler
        self.train = train
        self.device = device

    def forward_backward(self, batch: Any, state: Any, lr: float) -> StepOutcome:
        """Set the learning rate, compute the loss (autocast), backpropagate, clip by norm."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.train.precision, self.device):
            loss, new_state, batch_metrics = self.task.step(self.train_model, batch, state)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        norm = self._clip_by_norm()
        # The step's one host-device synchronization: loss, gradient norm, tensor metrics.
        tensor_metrics = {k: v for k, v in batch_metrics.items() if isinstance(v, Tensor)}
        scalars = [loss.detach(), norm, *(v.detach() for v in tensor_metrics.values())]
        value, grad_norm, *metric_values = torch.stack(
            [t.float().reshape(()).to(norm.device) for t in scalars]
        ).tolist()
        metrics = {**batch_metrics, **dict(zip(tensor_metrics, metric_values, strict=True))}
        count = float(metrics.get("count", 1.0))
        return StepOutcome(value, grad_norm, metrics, new_state, count)

    def apply(self, grad_norm: float) -> bool:
        """Clip by value (when configured) and step the optimizer; whether clipping (by norm
        or by value) changed anything."""
        clipped = self._clip_by_value(grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return clipped

    def discard(self) -> None:
        """Drop the gradients of a skipped batch (and close the scaler's step)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:  # unscale_ ran for this step: close it
            self.scaler.update()

    def _clip_by_norm(self) -> Tensor:
        """Clip by total norm when configured; the pre-clip total norm, as a tensor (no sync)."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.train.grad_clip_norm
        if not params:
            return torch.zeros((), device=self.device)
        return torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm else float("inf"))

    def _clip_by_value(self, grad_norm: float) -> bool:
        """Clip by value when configured; whether clipping (by norm or value) changed anything."""
        max_norm = self.train.grad_clip_norm
        if max_norm is not None:
            return grad_norm > max_norm
        clip_value = self.train.grad_clip_value
        if clip_value is None:
            return False
        params = [p for p in self.model.parameters() if p.grad is not None]
        clipped = any(bool((p.grad.abs() > clip_value).any()) for p in params if p.grad is not None)
        torch.nn.utils.clip_grad_value_(params, clip_value)
        return clipped
