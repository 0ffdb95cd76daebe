"""The layer-normalized GRU as one autograd node keeping both layer norms' inputs, not its gates.

A GRU with layer norm on both projections (the equations of ``rnnlab.nn.steps``),

    gx_t = LN_ih(x_t W_ih^T) + b_ih                      (3H: r, z, n parts)
    a_t  = h_rec_{t-1} W_hh^T,    gh_t = LN_hh(a_t) + b_hh
    r, z = sigmoid(gx_t[r, z] + gh_t[r, z]),   n = tanh(gx_t[n] + r * gh_t[n])
    h_t  = (1 - z) n + z h_{t-1}                        (then zoneout and lengths)

run as two nodes (``LN_ih`` under autograd, then ``fused_bptt``) keeps for backward
``x W_ih^T`` (3 planes of ``(T, B, H)``: autograd's layer norm), the gates ``r, z, n`` and
``gh[n]`` (4 planes) and the outputs (1), and recomputes ``a`` with one ``(T*B, H) x
(H, 3H)`` matrix multiply: 7 multiplies of that size where torch's GRU does 6.

Here ``a`` is kept instead of the gates (3 planes for 4), and backward rebuilds them from
the two layer norms' inputs and kept statistics in one pass over all steps
(``loops.gru_rebuild`` or its native twin):

    gx = LN_ih(x W_ih^T) + b_ih,   gh = LN_hh(a) + b_hh
    r, z = sigmoid(gx[r, z] + gh[r, z]),   n = tanh(gx[n] + r * gh[n])

so 6 multiplies for one plane less. The rebuilt gates equal forward's to within a few
units in the last place (the same functions, evaluated in another order). The
outputs are kept as before (``h_{t-1}`` for ``dW_hh``); lengths keep ``h_{t-1}`` itself.

Example:
    >>> import torch
    >>> x, h0 = torch.randn(6, 2, 3), torch.zeros(2, 4)
    >>> w_ih, w_hh = torch.randn(12, 3), torch.randn(12, 4)
    >>> norm = (torch.ones(12), torch.zeros(12))
    >>> out, h = normalized_gru(x, w_ih, norm, h0, w_hh, None, norm)
    >>> out.shape, bool((out[-1] == h).all())
    (torch.Size([6, 2, 4]), True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnlab.nn import huge_pages
from rnnlab.nn.bptt_gru import gru_backward_pass, gru_forward_pass
from rnnlab.nn.input_norm import folded_shift, layer_norm_with_stats, projection_grads
from rnnlab.nn.loop_backends import time_loops
from rnnlab.nn.precision import full_precision_backward
from rnnlab.nn.regularizers import SeededMask
from rnnlab.nn.steps import Norm


class _NormalizedGRUFunction(torch.autograd.Function):
    """See the module doc: ``LN_ih``, the GRU's time loop and ``LN_hh``, keeping ``a``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,  # (T, B, I)
        w_ih: Tensor,  # (3H, I)
        in_gain: Tensor | None,  # (3H,)
        in_shift: Tensor | None,  # (3H,): LN_ih's bias + b_ih
        h0: Tensor,  # (B, H)
        w_hh: Tensor,  # (3H, H)
        ln_w: Tensor | None,  # (3H,)
        ln_b: Tensor | None,  # (3H,)
        b_hh: Tensor | None,  # (3H,)
        rec_mask: Tensor | None,  # (B, H)
        zone: Tensor | None,  # (T, B, H)
        valid: Tensor | None,  # (T, B, 1) bool
        reverse: bool,
        w_keep: Tensor | SeededMask | None,
        w_scale: float,
    ) -> tuple[Tensor, Tensor]:
        a_in = huge_pages.projection(x, w_ih)
        gx, in_mean, in_rstd = layer_norm_with_stats(a_in, in_gain, in_shift)
        run = gru_forward_pass(
            ctx, gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask, zone, valid, (reverse, True),
            w_keep, w_scale, keep_norm_inputs=True,
        )  # fmt: skip
        rebuild = (h0, run.out) if run.prevs is None else (None, None)
        ctx.save_for_backward(
            x, w_ih, in_gain, in_shift, a_in, in_mean, in_rstd, run.w_raw, run.stored_keep,
            ln_w, ln_b, b_hh, rec_mask, zone, valid, run.prevs, *rebuild, *run.norm,
        )  # fmt: skip
        return run.out, run.h

    @staticmethod
    @once_differentiable
    @full_precision_backward
    def backward(ctx: Any, d_out: Tensor, d_h: Tensor) -> tuple[Tensor | None, ...]:
        (x, w_ih, in_gain, in_shift, a_in, in_mean, in_rstd, w_hh, w_keep, ln_w, ln_b, b_hh,
         rec_mask, zone, valid, prevs, h0, out, a_all, mean_all,
         rstd_all) = ctx.saved_tensors  # fmt: skip
        steps, batch, width = a_all.shape
        rz = huge_pages.new_empty(a_all, steps, batch, 2 * width // 3)
        n, hn = (
            huge_pages.new_empty(a_all, steps, batch, width // 3),
            huge_pages.new_empty(a_all, steps, batch, width // 3),
        )
        time_loops(ctx.native).gru_rebuild(
            a_in, in_mean, in_rstd, in_gain, in_shift, a_all, mean_all, rstd_all, ln_w,
            folded_shift(ln_b, b_hh), rz, n, hn,
        )  # fmt: skip
        gates = (rz, n, hn)
        needs = ctx.needs_input_grad  # x, w_ih, in_gain, in_shift, h0, w_hh, ln_w, ln_b, b_hh
        d_gx, d_h0, d_w_hh, d_b_hh, d_ln_w, d_ln_b = gru_backward_pass(
            ctx, d_out, d_h, w_hh, w_keep, ln_w, rec_mask, zone, valid, gates, prevs, h0, out,
            (a_all, mean_all, rstd_all), (True, needs[4], needs[5], needs[8], needs[6], needs[7]),
        )  # fmt: skip
        assert d_gx is not None
        d_x, d_w_ih, d_in_gain, d_in_shift = projection_grads(
            d_gx, a_in, x, w_ih, (in_gain, in_shift, in_mean, in_rstd), needs[:4],
            overwrite=True,  # d_gx: the pass's own buffer, read by nothing else
        )  # fmt: skip
        return (
            d_x, d_w_ih, d_in_gain, d_in_shift, d_h0, d_w_hh, d_ln_w, d_ln_b, d_b_hh,
            *([None] * 6),
        )  # fmt: skip


def normalized_gru(
    x: Tensor,
    w_ih: Tensor,
    ln_ih: Norm,
    h0: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    ln_hh: Norm,
    *,
    b_ih: Tensor | None = None,
    rec_mask: Tensor | None = None,
    zone: Tensor | None = None,
    valid: Tensor | None = None,
    reverse: bool = False,
    w_keep: Tensor | SeededMask | None = None,
    weight_drop: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """One direction of a layer-normalized GRU layer, keeping the layer norms' inputs.

    Args:
        x: inputs ``(T, B, I)``; w_ih ``(3H, I)``, b_ih ``(3H,)``: the input projection.
        ln_ih, ln_hh: ``(gain, bias)`` of the input's and the recurrent projection's layer
            norms (``ln_hh`` required).
        h0: initial state ``(B, H)``; w_hh ``(3H, H)``, b_hh ``(3H,)``.
        rec_mask, zone, valid, reverse, w_keep, weight_drop: as ``fused_bptt.run_direction``
            (``zone``: a bool mask in training, the float weight ``p`` in eval).

    Returns:
        ``(outputs (T, B, H), h_T)``.
    """
    if ln_hh is None:
        raise ValueError("normalized_gru: ln_hh must be a (gain, bias) pair, got None")
    in_gain, in_bias = (None, None) if ln_ih is None else ln_ih
    ln_w, ln_b = ln_hh
    scale = 1.0 / (1.0 - weight_drop) if w_keep is not None else 1.0
    out, h = _NormalizedGRUFunction.apply(
        x, w_ih, in_gain, folded_shift(in_bias, b_ih), h0, w_hh, ln_w, ln_b, b_hh, rec_mask, zone,
        valid, reverse, w_keep, scale,
    )  # fmt: skip
    return out, h
