"""Checks of constructor options and call arguments, each a ``ValueError`` naming the value."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

NONLINEARITIES = ("tanh", "relu")


def check_size(name: str, value: int, minimum: int = 1) -> None:
    """``value`` must be an integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_probability(name: str, value: float) -> None:
    """``value`` must lie in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")


def check_nonlinearity(value: str) -> None:
    if value not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {value!r}")


def check_input(name: str, input: Tensor, input_size: int, allowed_dims: Sequence[int]) -> None:
    """Rank in ``allowed_dims`` and last dimension equal to ``input_size``."""
    if not isinstance(input, Tensor):
        raise ValueError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.dim() not in allowed_dims:
        shapes = " or ".join(f"{d}-D" for d in allowed_dims)
        raise ValueError(
            f"{name}: input must be {shapes}, got {input.dim()}-D of shape {tuple(input.shape)}"
        )
    if input.shape[-1] != input_size:
        raise ValueError(
            f"{name}: input feature size (last dimension) must be input_size={input_size}, "
            f"got {input.shape[-1]} (input shape {tuple(input.shape)})"
        )


def check_state(name: str, state: Tensor, expected: tuple[int, ...]) -> None:
    """An initial state must be a tensor of exactly ``expected`` shape."""
    if not isinstance(state, Tensor):
        raise ValueError(f"{name} must be a Tensor of shape {expected}, got {type(state).__name__}")
    if tuple(state.shape) != expected:
        raise ValueError(f"{name} must have shape {expected}, got {tuple(state.shape)}")


def check_lengths(lengths: Tensor | Sequence[int], batch: int, steps: int) -> Tensor:
    """Return ``lengths`` as a CPU int64 tensor after checking count and range ``[1, steps]``."""
    lengths_t = torch.as_tensor(lengths)
    if lengths_t.dim() != 1 or lengths_t.dtype.is_floating_point or lengths_t.is_complex():
        raise ValueError(
            f"lengths must be a 1-D integer tensor or sequence, got dtype {lengths_t.dtype} "
            f"and shape {tuple(lengths_t.shape)}"
        )
    if lengths_t.numel() != batch:
        raise ValueError(
            f"lengths must have one entry per sequence: expected {batch}, got {lengths_t.numel()}"
        )
    lengths_t = lengths_t.to(device="cpu", dtype=torch.int64)
    bad = (lengths_t < 1) | (lengths_t > steps)
    if bool(bad.any()):
        index = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"lengths[{index}] = {int(lengths_t[index])} is out of range: each length must be "
            f"in [1, {steps}] (the padded sequence length)"
        )
    return lengths_t
