"""The layer-normalized input projection ``LN_ih(x W_ih^T) + b_ih`` that keeps less for backward.

Ordinary autograd keeps the layer norm's input ``a = x W_ih^T`` (a ``(T, B, G*H)`` plane)
next to ``x`` (kept by the matrix multiply). :func:`normalized_projection` keeps only ``x``,
the weights and the per-row statistics, and recomputes ``a`` in backward with one matrix
multiply:

    a = x W^T,   y = (a - mean(a)) * rstd(a) * g + beta + b_ih,
    rstd = 1 / sqrt(var(a) + eps)   (over the last dimension, biased variance)

    backward:  d_a = LN'(d_y)  (with d_g and d_beta; native on CPU, else ATen's),
               d_x = d_a W,   d_W = d_a^T x.

``b_ih`` is folded into the layer norm's shift (``LN(a; g, beta) + b = LN(a; g, beta + b)``),
so its gradient is the shift's.

For the simple RNN this is the difference between 1.9x and 1.1x torch.nn's memory for
training (torch's RNN keeps its input and outputs; rnnlab's fused RNN keeps its outputs);
the price is one more ``(T*B, I) x (I, H)`` matrix multiply. In training the simple RNN
goes further (``rnnlab.nn.normalized_rnn``: one node that also spares the recurrent layer
norm's recompute); this function serves it under eval-mode zoneout with autograd on. The
LSTM, whose time and not memory is the binding constraint, uses it with ``recompute=False``
(``x W^T`` kept, as ordinary autograd would): one node, its buffers its own.

Example:
    >>> import torch
    >>> x, w = torch.randn(5, 2, 3), torch.randn(4, 3)
    >>> g, beta = torch.ones(4), torch.zeros(4)
    >>> y = normalized_projection(x, w, g, beta, None)
    >>> torch.allclose(y, torch.nn.functional.layer_norm(x @ w.t(), (4,), g, beta), atol=1e-6)
    True
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnlab.nn import huge_pages, native
from rnnlab.nn.precision import full_precision_backward
from rnnlab.nn.steps import LAYER_NORM_EPS


def layer_norm_with_stats(
    a: Tensor, gain: Tensor | None, shift: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(LN(a; gain, shift), mean, rstd)`` over the last dimension, outside autograd.

    For an ``a`` of fresh-page size (``huge_pages.fresh_pages``) on CPU, through the native
    kernel into a buffer advised to use huge pages (ATen's layer norm would allocate a fresh
    one, faulted in 4 KiB at a time); otherwise ATen's, faster on buffers glibc recycles
    (1.0 against 1.8 ms at T=100, B=32, 1024 wide, 2 threads; measured while the native
    library still ran on one thread: threaded, its rows took 1.15 ms against ATen's 1.6 at
    T=100, B=128, 256 wide, so this split is due a new measurement).
    """
    large = huge_pages.fresh_pages(a.numel() * a.element_size())
    if not (large and native.usable(a, gain, shift)):
        y, mean, rstd = torch.native_layer_norm(a, [a.shape[-1]], gain, shift, LAYER_NORM_EPS)
        return y, mean, rstd
    a = a.contiguous()
    y = huge_pages.empty_like(a)
    mean, rstd = a.new_empty(*a.shape[:-1], 1), a.new_empty(*a.shape[:-1], 1)
    native.ops().layer_norm_rows(a, gain, shift, y, mean, rstd)
    return y, mean, rstd


def layer_norm_grads(
    d_y: Tensor,
    a: Tensor,
    stats: tuple[Tensor | None, Tensor | None, Tensor, Tensor],  # gain, shift, mean, rstd
    needs: tuple[bool, bool],  # gain, shift
    overwrite: bool = False,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Backward of :func:`layer_norm_with_stats`: ``(d_a, d_gain, d_shift)``.

    ``overwrite=True`` lets it write ``d_a`` over ``d_y`` (a buffer nothing else reads).
    """
    gain, shift, mean, rstd = stats
    width = a.shape[-1]
    mask = [True, needs[0] and gain is not None, needs[1] and shift is not None]
    if not native.usable(d_y, a, gain, mean, rstd):
        d_a, d_gain, d_shift = torch.ops.aten.native_layer_norm_backward(
            d_y.contiguous(), a, [width], mean, rstd, gain, shift, mask
        )
        return d_a, d_gain, d_shift
    d_y, a = d_y.contiguous(), a.contiguous()
    d_a = d_y if overwrite else huge_pages.empty_like(a)
    grads = [a.new_empty(width) if wanted else None for wanted in mask[1:]]
    native.ops().layer_norm_rows_backward(d_y, a, mean, rstd, gain, d_a, *grads)
    return d_a, grads[0], grads[1]


def folded_shift(shift: Tensor | None, bias: Tensor | None) -> Tensor | None:
    """``shift + bias`` (either may be ``None``): ``LN(a; g, s) + b = LN(a; g, s + b)``."""
    if bias is None:
        return shift
    return bias if shift is None else shift + bias


def projection_grads(
    d_y: Tensor,
    a: Tensor,
    x: Tensor,
    w: Tensor,
    stats: tuple[Tensor | None, Tensor | None, Tensor, Tensor],  # gain, shift, mean, rstd
    needs: tuple[bool, bool, bool, bool],  # x, w, gain, shift
    overwrite: bool = False,
) -> tuple[Tensor | None, ...]:
    """Backward of ``y = LN(x W^T; gain, shift)`` given ``a = x W^T``: grads of
    ``(x, w, gain, shift)``, ``None`` where not needed (``overwrite``: as
    :func:`layer_norm_grads`)."""
    d_a, d_gain, d_shift = layer_norm_grads(d_y, a, stats, needs[2:], overwrite)
    width = w.shape[0]
    d_x = huge_pages.product(d_a, w) if needs[0] else None
    d_w = d_a.reshape(-1, width).t().mm(x.reshape(-1, x.shape[-1])) if needs[1] else None
    return d_x, d_w, d_gain, d_shift


class _NormalizedProjection(torch.autograd.Function):
    """``LN(x W^T; gain, shift)``, keeping ``a = x W^T`` or recomputing it (``keep``)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,  # (..., I)
        w: Tensor,  # (N, I)
        gain: Tensor | None,  # (N,)
        shift: Tensor | None,  # (N,)
        keep: bool,
    ) -> Tensor:
        a = huge_pages.projection(x, w)
        y, mean, rstd = layer_norm_with_stats(a, gain, shift)
        ctx.save_for_backward(x, w, gain, shift, mean, rstd, a if keep else None)
        return y

    @staticmethod
    @once_differentiable
    @full_precision_backward
    def backward(ctx: Any, d_y: Tensor) -> tuple[Tensor | None, ...]:
        x, w, gain, shift, mean, rstd, a = ctx.saved_tensors
        if a is None:
            a = huge_pages.projection(x, w)  # recomputed: the one plane forward did not keep
        needs = ctx.needs_input_grad[:4]
        return (*projection_grads(d_y, a, x, w, (gain, shift, mean, rstd), needs), None)


def normalized_projection(
    x: Tensor,
    w: Tensor,
    gain: Tensor | None,
    shift: Tensor | None,
    bias: Tensor | None,
    *,
    recompute: bool = True,
) -> Tensor:
    """``LN(x W^T; gain, shift) + bias`` over the last dimension as one autograd node.

    Args:
        x: inputs ``(..., I)``.
        w: weight ``(N, I)``.
        gain, shift: the layer norm's elementwise affine parameters ``(N,)`` (or ``None``).
        bias: added after the layer norm ``(N,)`` (or ``None``).
        recompute: ``True`` keeps ``x`` only and recomputes ``x W^T`` in backward (the
            memory of the simple RNN); ``False`` keeps ``x W^T`` as ordinary autograd does,
            in one node whose buffers skip ATen's allocations (the LSTM's time).

    Returns:
        ``(..., N)``, equal to ``F.layer_norm(x @ w.T, (N,), gain, shift) + bias``.
    """
    # LN(a; g, beta) + b = LN(a; g, beta + b): no pass of its own
    out: Tensor = _NormalizedProjection.apply(x, w, gain, folded_shift(shift, bias), not recompute)
    return out
