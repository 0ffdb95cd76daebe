"""rnnlab's fused BPTT for the LSTM: one direction of one layer as one autograd node.

Gate order ``i, f, g, o`` as in torch::

    i, f, g, o = gx_t + LN_hh(h_rec W_hh^T) + b_hh                 (split in four)
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(LN_c(c_t))        and, with W_hr, h_t = W_hr h_t

Backward keeps the four activated gates, ``tanh(LN_c(c_t))`` and ``c_{t-1}``; the
conventions are in ``rnnlab.nn.fused_bptt``.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnlab.nn import huge_pages, native
from rnnlab.nn.bptt_parts import (
    PreviousStates,
    dense,
    dropped,
    flat_valid,
    norm_buffers,
    norm_grad_buffers,
    output_grad,
    sum_rows,
    undropped_grad,
    weight_grad,
)
from rnnlab.nn.loop_backends import time_loops
from rnnlab.nn.precision import full_precision_backward
from rnnlab.nn.regularizers import SeededMask

Grads = tuple[Tensor | None, ...]


class LSTMFunction(torch.autograd.Function):
    """The LSTM step of ``rnnlab.nn.steps`` (optional ``LN_hh``, ``LN_c``, ``W_hr``) over time."""

    @staticmethod
    def forward(
        ctx: Any,
        gx: Tensor,  # (T, B, 4H)
        h0: Tensor,  # (B, P)      P = proj_size or H
        c0: Tensor,  # (B, H)
        w_hh: Tensor,  # (4H, P)
        b_hh: Tensor | None,  # (4H,)
        ln_w: Tensor | None,  # (4H,)
        ln_b: Tensor | None,
        lnc_w: Tensor | None,  # (H,)
        lnc_b: Tensor | None,
        w_hr: Tensor | None,  # (P, H)
        rec_mask: Tensor | None,  # (B, P)
        zone_h: Tensor | None,  # (T, B, P)
        zone_c: Tensor | None,  # (T, B, H)
        valid: Tensor | None,  # (T, B, 1) bool
        reverse: bool,
        layer_norm: bool,
        w_keep: Tensor | SeededMask | None,  # DropConnect's bool mask of W_hh, or None
        w_scale: float,  # 1 / (1 - p)
    ) -> tuple[Tensor, Tensor, Tensor]:
        ctx.w_seeded = w_keep if isinstance(w_keep, SeededMask) else None
        w_raw, w_hh = w_hh, dropped(w_hh, w_keep, w_scale)  # keeps the mask (or seed) only
        stored_keep = None if ctx.w_seeded is not None else w_keep
        ctx.w_scale = w_scale
        steps, batch, width = gx.shape
        hidden = width // 4
        norm_saved = norm_buffers(gx, layer_norm, keep_inputs=True)
        out = huge_pages.new_empty(gx, steps, *h0.shape)  # (T, B, P)
        gates = huge_pages.empty_like(gx)  # (T, B, 4H): sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        tanh_c = huge_pages.new_empty(gx, steps, batch, hidden)  # tanh(LN_c(c~_t))
        h_prevs = (
            huge_pages.empty_like(out) if valid is not None else None
        )  # (T, B, P), lengths only
        c_prevs = huge_pages.empty_like(tanh_c)  # (T, B, H)
        c_new_all = huge_pages.empty_like(tanh_c) if layer_norm else None  # c~_t, input of LN_c
        c_mean = gx.new_empty(steps, batch, 1) if layer_norm else None
        c_rstd = gx.new_empty(steps, batch, 1) if layer_norm else None
        ctx.native = native.usable(gx, h0, c0, w_hh, b_hh, ln_w, ln_b, lnc_w, lnc_b, w_hr, rec_mask)
        h, c = time_loops(ctx.native).lstm_forward(
            gx.contiguous(), h0, c0, w_hh, b_hh, ln_w, ln_b, lnc_w, lnc_b, w_hr, rec_mask,
            dense(zone_h), dense(zone_c), flat_valid(valid), reverse, layer_norm, out,
            gates, tanh_c, h_prevs, c_prevs, c_new_all, c_mean, c_rstd, *norm_saved,
        )  # fmt: skip
        rebuild = (h0, out) if h_prevs is None else (None, None)
        ctx.save_for_backward(
            w_raw, stored_keep, ln_w, lnc_w, w_hr, rec_mask, zone_h, zone_c, valid, gates, tanh_c,
            h_prevs, *rebuild, c_prevs, c_new_all, c_mean, c_rstd, *norm_saved,
        )  # fmt: skip
        ctx.flags = (reverse, layer_norm)
        return out, h, c

    @staticmethod
    @once_differentiable
    @full_precision_backward
    def backward(ctx: Any, d_out: Tensor, d_h: Tensor, d_c: Tensor) -> Grads:
        (
            w_hh, w_keep, ln_w, lnc_w, w_hr, rec_mask, zone_h, zone_c, valid, gates, tanh_c,
            h_prevs, h0, out, c_prevs, c_new_all, c_mean, c_rstd, a_all, mean_all, rstd_all,
        ) = ctx.saved_tensors  # fmt: skip
        if ctx.w_seeded is not None:
            w_keep = ctx.w_seeded  # applied from its seed, never materialized
        w_hh = dropped(w_hh, w_keep, ctx.w_scale)  # the masked W_hh forward used
        reverse, layer_norm = ctx.flags
        previous = PreviousStates(h_prevs, out, h0, rec_mask, reverse)
        d_pre_all = huge_pages.empty_like(gates)  # (T, B, 4H) = dgx
        d_a_all = huge_pages.empty_like(gates) if layer_norm else d_pre_all
        d_lnc_all = huge_pages.empty_like(tanh_c) if layer_norm else None  # grad of LN_c's output
        d_hnew_all = (  # (T, B, P)
            huge_pages.new_empty(gates, *gates.shape[:2], w_hr.shape[0])
            if w_hr is not None
            else None
        )
        needs = ctx.needs_input_grad
        hidden = tanh_c.shape[-1]
        d_ln = norm_grad_buffers(gates, 4 * hidden, layer_norm, needs[5:7])
        d_lnc = norm_grad_buffers(gates, hidden, layer_norm, needs[7:9])
        grad_h, grad_c = time_loops(ctx.native).lstm_backward(
            output_grad(d_out), d_h, d_c, w_hh, ln_w, lnc_w, w_hr, rec_mask,
            dense(zone_h), dense(zone_c), flat_valid(valid), gates, tanh_c, c_prevs,
            c_new_all, c_mean, c_rstd, a_all, mean_all, rstd_all, reverse, layer_norm, d_pre_all,
            d_a_all if layer_norm else None, d_lnc_all, d_hnew_all, *d_ln, *d_lnc,
        )  # fmt: skip
        d_w_hr = None
        if w_hr is not None and needs[9]:
            out_gate = gates[..., 3 * hidden :]  # o, (T, B, H)
            d_w_hr = weight_grad(cast(Tensor, d_hnew_all), out_gate * tanh_c)
        return (
            d_pre_all if needs[0] else None,
            grad_h if needs[1] else None,
            grad_c if needs[2] else None,
            undropped_grad(
                previous.weight_grad(d_a_all) if needs[3] else None, w_keep, ctx.w_scale
            ),
            sum_rows(d_pre_all) if needs[4] else None,
            *d_ln,
            *d_lnc,
            d_w_hr,
            *([None] * 8),
        )
