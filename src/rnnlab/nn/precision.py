"""Mixed precision and rnnlab's own autograd Functions.

Under ``torch.autocast`` the recurrent layers run their fused BPTT in the parameters' dtype
with autocast off (``RecurrentLayer._forward_loop``). Backward, though, runs under whatever
autocast state the caller's ``loss.backward()`` sees: inside an autocast block a matrix
multiply in a hand-written backward would silently produce bf16/fp16 and collide with the
float32 buffers. :func:`full_precision_backward` turns autocast off there as well, so
backward computes in the dtype forward saved, whichever way the caller calls it.

Example:
    >>> import torch
    >>> class Square(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     @full_precision_backward
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * grad
    >>> x = torch.ones(2, requires_grad=True)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     Square.apply(x).sum().backward()
    >>> x.grad.dtype
    torch.float32
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

Backward = TypeVar("Backward", bound=Callable[..., Any])


def full_precision_backward(backward: Backward) -> Backward:
    """Run an autograd Function's ``backward`` with autocast off on the gradients' device."""

    @functools.wraps(backward)
    def wrapper(ctx: Any, *grads: Any) -> Any:
        device = next((g.device.type for g in grads if isinstance(g, torch.Tensor)), "cpu")
        if not torch.is_autocast_enabled(device):
            return backward(ctx, *grads)
        with torch.autocast(device, enabled=False):
            return backward(ctx, *grads)

    return wrapper  # type: ignore[return-value]
