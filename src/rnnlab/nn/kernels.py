"""Which kernel a recurrent layer runs, and why.

torch's fused kernels (oneDNN on CPU, cuDNN on GPU) compute plain RNN, LSTM and GRU layers.
They take the weights as a list, so DropConnect on ``W_hh`` still runs fused: the masked
matrix simply replaces the parameter in that list for one call, as AWD-LSTM does. Layer
normalization, recurrent dropout and zoneout change the step equations themselves, so a
layer that uses them runs rnnlab's own time loop (``rnnlab.nn.recurrent``).

Regularizers are inactive in ``eval()`` mode, so an evaluating layer with only dropout-type
extras runs fused. Zoneout is the exception: at evaluation it mixes the previous and the
new state with weights ``p`` and ``1 - p`` (its expectation, as Krueger et al. prescribe),
which the fused kernel cannot do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

_force_loop: ContextVar[bool] = ContextVar("rnnlab_force_loop", default=False)


@contextmanager
def force_loop() -> Iterator[None]:
    """Run every rnnlab layer through rnnlab's own time loop inside this block.

    For comparing the two implementations (tests, benchmarks, debugging): the loop computes
    the same function as torch's fused kernel when no extra is active.

    Example:
        >>> import torch, rnnlab
        >>> lstm = rnnlab.LSTM(3, 4)
        >>> with force_loop():
        ...     print(lstm.kernel().name)
        rnnlab-loop
    """
    token = _force_loop.set(True)
    try:
        yield
    finally:
        _force_loop.reset(token)


class HasExtras(Protocol):
    """What kernel selection reads from a layer."""

    training: bool
    layer_norm: bool
    recurrent_dropout: float
    zoneout: float
    weight_drop: float


@dataclass(frozen=True)
class KernelChoice:
    """The kernel a forward call will use.

    Attributes:
        fused: ``True`` for torch's fused kernel, ``False`` for rnnlab's own time loop.
        drop_connect: whether ``W_hh`` is replaced by a DropConnect-masked copy.
        reason: the choice in words.
    """

    fused: bool
    drop_connect: bool
    reason: str

    @property
    def name(self) -> str:
        """A short name: ``"torch-fused"`` or ``"rnnlab-loop"``."""
        return "torch-fused" if self.fused else "rnnlab-loop"


def select_kernel(layer: HasExtras) -> KernelChoice:
    """Choose the kernel for ``layer`` in its current train/eval mode."""
    mode = "training" if layer.training else "eval"
    step_changes = []
    if layer.layer_norm:
        step_changes.append("layer_norm normalizes the gates inside every step")
    if layer.training and layer.recurrent_dropout > 0:
        step_changes.append(
            f"recurrent_dropout={layer.recurrent_dropout} masks the state feeding W_hh"
        )
    if layer.zoneout > 0:
        what = "keeps random units" if layer.training else "mixes in the previous state"
        step_changes.append(f"zoneout={layer.zoneout} {what} at every step")
    drop_connect = layer.training and layer.weight_drop > 0
    if _force_loop.get():
        return KernelChoice(
            fused=False,
            drop_connect=drop_connect,
            reason=f"rnnlab-loop ({mode} mode): forced by rnnlab.nn.force_loop().",
        )
    if step_changes:
        return KernelChoice(
            fused=False,
            drop_connect=drop_connect,
            reason=(
                f"rnnlab-loop ({mode} mode): "
                + "; ".join(step_changes)
                + ", which torch's fused kernel cannot compute. Input projections of all "
                "time steps run as one matrix multiply; the recurrence runs step by step."
            ),
        )
    if drop_connect:
        reason = (
            f"torch-fused ({mode} mode): weight_drop={layer.weight_drop} replaces W_hh by a "
            "DropConnect-masked copy (one mask per forward call) and torch's fused kernel "
            "runs with it."
        )
    else:
        inactive = [
            name
            for name, value in (
                ("recurrent_dropout", layer.recurrent_dropout),
                ("weight_drop", layer.weight_drop),
            )
            if value > 0
        ]
        note = f"; {', '.join(inactive)} inactive in eval mode" if inactive else ""
        reason = (
            f"torch-fused ({mode} mode): no extra changes the step equations{note}, so "
            "torch's own fused kernel runs (oneDNN on CPU, cuDNN on GPU), exactly as "
            "torch.nn would."
        )
    return KernelChoice(fused=True, drop_connect=drop_connect, reason=reason)
