"""The layer-normalized simple RNN as one autograd node keeping ``LN_hh``'s inputs, not outputs.

A simple RNN with layer norm on both projections,

    gx_t  = LN_ih(x_t W_ih^T) + b_ih
    a_t   = h_rec_{t-1} W_hh^T,                     h_rec_{t-1} = h_{t-1} * rec_mask
    h~_t  = act(gx_t + LN_hh(a_t) + b_hh)           act = tanh or relu
    h_t   = zoneout(h_{t-1}, h~_t)                   (and held past a sequence's end)

needs in backward the inputs of both layer norms (``x W_ih^T`` and ``a``), the activations
``h~`` (for ``act'``) and the states ``h_{t-1}`` (for ``dW_hh``). The memory target (at most
1.5x what torch's RNN keeps: about one ``(T, B, H)`` plane, its outputs) leaves room for one
plane. Kept as two separate functions (``input_norm`` then ``fused_bptt``) that plane holds
the outputs and backward recomputes both layer-norm inputs, two ``(T*B, H) x (H, H)``
matrix multiplies (8 multiplies of that size where torch's RNN does 6).

Here the one plane kept is ``a`` instead, and backward rebuilds everything else from it with
one matrix multiply and a few elementwise passes, all steps at once:

    x W_ih^T  recomputed (one matrix multiply),  gx = LN_ih(x W_ih^T) + b_ih
    h~ = act(gx + LN_hh(a) + b_hh)                 (elementwise, all steps)
    h_rec_{t-1} = h_{t-1} * rec_mask, with h_t = h~_t or, where a bool zoneout mask keeps
          the previous value, h_{t-1}        (one pass, ``loops.recurrent_inputs``; without
                                              a mask or zoneout, h~ shifted by one step)

so 7 multiplies instead of 8 (1.17x torch's instead of 1.33x) for the same memory. ``h~`` is
rebuilt in one pass from the kept statistics (``loops.rnn_rebuild`` or its native twin:
forward's own activation functions, evaluated in another order, so equal to within a few
units in the last place): the backward it feeds is that of the same function to that
precision. Lengths keep ``h_{t-1}`` as the fused function does (the state is held past a
sequence's end); zoneout's eval-mode expectation (a float weight, not a bool mask) has no
elementwise rebuild and keeps using the two functions.

Example:
    >>> import torch
    >>> x, h0 = torch.randn(6, 2, 3), torch.zeros(2, 4)
    >>> w_ih, w_hh = torch.randn(4, 3), torch.randn(4, 4)
    >>> ones, zeros = torch.ones(4), torch.zeros(4)
    >>> out, h = normalized_rnn(x, w_ih, (ones, zeros), h0, w_hh, None, (ones, zeros))
    >>> out.shape, bool((out[-1] == h).all())
    (torch.Size([6, 2, 4]), True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnlab.nn import huge_pages
from rnnlab.nn.bptt_rnn import rnn_backward_pass, rnn_forward_pass
from rnnlab.nn.input_norm import folded_shift, layer_norm_with_stats, projection_grads
from rnnlab.nn.loop_backends import time_loops
from rnnlab.nn.precision import full_precision_backward
from rnnlab.nn.regularizers import SeededMask
from rnnlab.nn.steps import Norm


class _NormalizedRNNFunction(torch.autograd.Function):
    """See the module doc: ``LN_ih``, the time loop and ``LN_hh`` keeping ``a`` only."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,  # (T, B, I)
        w_ih: Tensor,  # (H, I)
        in_gain: Tensor | None,  # (H,)
        in_shift: Tensor | None,  # (H,): LN_ih's bias + b_ih
        h0: Tensor,  # (B, H)
        w_hh: Tensor,  # (H, H)
        ln_w: Tensor | None,  # (H,)
        ln_b: Tensor | None,  # (H,)
        b_hh: Tensor | None,  # (H,)
        rec_mask: Tensor | None,  # (B, H)
        zone: Tensor | None,  # (T, B, H) bool
        valid: Tensor | None,  # (T, B, 1) bool
        relu: bool,
        reverse: bool,
        w_keep: Tensor | SeededMask | None,
        w_scale: float,
    ) -> tuple[Tensor, Tensor]:
        gx, in_mean, in_rstd = layer_norm_with_stats(
            huge_pages.projection(x, w_ih), in_gain, in_shift
        )
        run = rnn_forward_pass(
            ctx, gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask, zone, valid,
            (relu, reverse, True), w_keep, w_scale, keep_norm_inputs=True,
        )  # fmt: skip
        ctx.save_for_backward(
            x, w_ih, in_gain, in_shift, in_mean, in_rstd, run.w_raw, run.stored_keep, ln_w,
            ln_b, b_hh, rec_mask, zone, valid, run.prevs, h0, *run.norm,
        )  # fmt: skip
        return run.out, run.h

    @staticmethod
    @once_differentiable
    @full_precision_backward
    def backward(ctx: Any, d_out: Tensor, d_h: Tensor) -> tuple[Tensor | None, ...]:
        (x, w_ih, in_gain, in_shift, in_mean, in_rstd, w_hh, w_keep, ln_w, ln_b, b_hh, rec_mask,
         zone, valid, prevs, h0, a_all, mean_all, rstd_all) = ctx.saved_tensors  # fmt: skip
        relu, reverse, _ = ctx.flags
        a_in = huge_pages.projection(x, w_ih)  # the one multiply recomputed
        acts = huge_pages.empty_like(a_all)  # h~ = act(LN_ih(a_in) + LN_hh(a) + b_hh), one pass
        time_loops(ctx.native).rnn_rebuild(
            a_in, in_mean, in_rstd, in_gain, in_shift, a_all, mean_all, rstd_all, ln_w,
            folded_shift(ln_b, b_hh), relu, acts,
        )  # fmt: skip
        h_rec_all = None  # no lengths: h_{t-1} from the activations
        if prevs is None and (zone is not None or rec_mask is not None):
            h_rec_all = huge_pages.empty_like(
                acts
            )  # (h_{t-1} * rec_mask), the outputs never formed
            time_loops(ctx.native).recurrent_inputs(
                acts, h0.contiguous(), zone, rec_mask, reverse, h_rec_all
            )
        needs = ctx.needs_input_grad  # x, w_ih, in_gain, in_shift, h0, w_hh, ln_w, ln_b, b_hh
        d_gx, d_h0, d_w_hh, d_b_hh, d_ln_w, d_ln_b = rnn_backward_pass(
            ctx, d_out, d_h, w_hh, w_keep, ln_w, rec_mask, zone, valid, acts, prevs, h0,
            acts if prevs is None else None, (a_all, mean_all, rstd_all),
            (True, needs[4], needs[5], needs[8], needs[6], needs[7]), h_rec_all,
        )  # fmt: skip
        assert d_gx is not None
        d_x, d_w_ih, d_in_gain, d_in_shift = projection_grads(
            d_gx, a_in, x, w_ih, (in_gain, in_shift, in_mean, in_rstd), needs[:4],
            overwrite=True,  # d_gx: the pass's own buffer, read by nothing else
        )  # fmt: skip
        return (
            d_x, d_w_ih, d_in_gain, d_in_shift, d_h0, d_w_hh, d_ln_w, d_ln_b, d_b_hh,
            *([None] * 7),
        )  # fmt: skip


def normalized_rnn(
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
    nonlinearity: str = "tanh",
    w_keep: Tensor | SeededMask | None = None,
    weight_drop: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """One direction of a layer-normalized simple RNN layer, keeping ``LN_hh``'s inputs.

    Args:
        x: inputs ``(T, B, I)``; w_ih ``(H, I)``, b_ih ``(H,)``: the input projection.
        ln_ih, ln_hh: ``(gain, bias)`` of the input's and the recurrent projection's layer
            norms (``ln_hh`` required).
        h0: initial state ``(B, H)``; w_hh ``(H, H)``, b_hh ``(H,)``.
        rec_mask, valid, reverse, w_keep, weight_drop: as ``fused_bptt.run_direction``.
        zone: zoneout's bool mask ``(T, B, H)`` (``True`` keeps the previous value), or
            ``None``; eval's float weights are refused (use ``fused_bptt.run_direction``).
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        ``(outputs (T, B, H), h_T)``.
    """
    if ln_hh is None:
        raise ValueError("normalized_rnn: ln_hh must be a (gain, bias) pair, got None")
    if zone is not None and zone.dtype != torch.bool:
        raise ValueError(f"normalized_rnn: zone must be a bool mask, got dtype {zone.dtype}")
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(
            f"normalized_rnn: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
        )
    in_gain, in_bias = (None, None) if ln_ih is None else ln_ih
    ln_w, ln_b = ln_hh
    scale = 1.0 / (1.0 - weight_drop) if w_keep is not None else 1.0
    out, h = _NormalizedRNNFunction.apply(
        x, w_ih, in_gain, folded_shift(in_bias, b_ih), h0, w_hh, ln_w, ln_b, b_hh, rec_mask, zone,
        valid, nonlinearity == "relu", reverse, w_keep, scale,
    )  # fmt: skip
    return out, h
