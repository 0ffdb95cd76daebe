"""The layer-normalized input projection ``LN_ih(x W_ih^T) + b_ih`` that keeps less for backward.

Ordinary autograd keeps the layer norm's input ``a = x W_ih^T`` (a ``(T, B, G*H)`` plane)
next to ``x`` (kept by the matrix multiply). :func:`normalized_projection` keeps only ``x``,
the weights and the per-row statistics, and recomputes ``a`` in backward with one matrix
multiply:

    a = x W^T,   y = (a - mean(a)) * rstd(a) * g + beta + b_ih,
    rstd = 1 / sqrt(var(a) + eps)   (over the last dimension, biased variance)

    backward:  d_a = LN'(d_y)  (ATen's layer-norm backward, with d_g and d_beta),
               d_x = d_a W,   d_W = d_a^T x.

``b_ih`` is folded into the layer norm's shift (``LN(a; g, beta) + b = LN(a; g, beta + b)``),
so its gradient is the shift's.

For the simple RNN this is the difference between 1.9x and 1.1x torch.nn's memory for
training (torch's RNN keeps its input and outputs; rnnlab's fused RNN keeps its outputs);
the price is one more ``(T*B, I) x (I, H)`` matrix multiply. In training the simple RNN
goes further (``rnnlab.nn.normalized_rnn``: one node that also spares the recurrent layer
norm's recompute); this function serves it under eval-mode zoneout with autograd on. The
gated cells keep using ordinary autograd: their time, not memory, is the binding constraint.

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

from rnnlab.nn.precision import full_precision_backward
from rnnlab.nn.steps import LAYER_NORM_EPS


class _NormalizedProjection(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,  # (..., I)
        w: Tensor,  # (N, I)
        gain: Tensor | None,  # (N,)
        shift: Tensor | None,  # (N,)
    ) -> Tensor:
        width = w.shape[0]
        a = torch.matmul(x, w.t())  # (..., N)
        y, mean, rstd = torch.native_layer_norm(a, [width], gain, shift, LAYER_NORM_EPS)
        ctx.save_for_backward(x, w, gain, shift, mean, rstd)
        return y

    @staticmethod
    @once_differentiable
    @full_precision_backward
    def backward(ctx: Any, d_y: Tensor) -> tuple[Tensor | None, ...]:
        x, w, gain, shift, mean, rstd = ctx.saved_tensors
        needs = ctx.needs_input_grad
        width = w.shape[0]
        a = torch.matmul(x, w.t())  # recomputed: the one plane forward did not keep
        d_y = d_y.contiguous()
        mask = [True, needs[2] and gain is not None, needs[3] and shift is not None]
        d_a, d_gain, d_shift = torch.ops.aten.native_layer_norm_backward(
            d_y, a, [width], mean, rstd, gain, shift, mask
        )
        flat_x = x.reshape(-1, x.shape[-1])
        flat_d_a = d_a.reshape(-1, width)
        d_x = torch.matmul(d_a, w) if needs[0] else None
        d_w = flat_d_a.t().mm(flat_x) if needs[1] else None
        return d_x, d_w, d_gain, d_shift


def normalized_projection(
    x: Tensor, w: Tensor, gain: Tensor | None, shift: Tensor | None, bias: Tensor | None
) -> Tensor:
    """``LN(x W^T; gain, shift) + bias`` over the last dimension, recomputing ``x W^T`` in backward.

    Args:
        x: inputs ``(..., I)``.
        w: weight ``(N, I)``.
        gain, shift: the layer norm's elementwise affine parameters ``(N,)`` (or ``None``).
        bias: added after the layer norm ``(N,)`` (or ``None``).

    Returns:
        ``(..., N)``, equal to ``F.layer_norm(x @ w.T, (N,), gain, shift) + bias``.
    """
    if bias is not None:  # LN(a; g, beta) + b = LN(a; g, beta + b): no pass of its own
        shift = bias if shift is None else shift + bias
    out: Tensor = _NormalizedProjection.apply(x, w, gain, shift)
    return out
