"""rnnlab's fused BPTT for the GRU: one direction of one layer as one autograd node.

Reset gate after the matrix multiply, as in torch and cuDNN::

    r = sigmoid(gx_r + a_r),  z = sigmoid(gx_z + a_z)      a = LN_hh(h_rec W_hh^T) + b_hh
    n = tanh(gx_n + r * a_n)
    h_t = (1 - z) * n + z * h_{t-1}

Backward keeps ``r``, ``z``, ``n`` and ``a_n`` (what ``r`` multiplies); the forward and
backward passes are functions of their own, which ``rnnlab.nn.normalized_gru`` wraps with
its input projection. The conventions are in ``rnnlab.nn.fused_bptt``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

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
    norm_inputs,
    output_grad,
    sum_rows,
    undropped_grad,
)
from rnnlab.nn.loop_backends import time_loops
from rnnlab.nn.precision import full_precision_backward
from rnnlab.nn.regularizers import SeededMask

Grads = tuple[Tensor | None, ...]


def gru_forward_pass(
    ctx: Any,
    gx: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    ln_w: Tensor | None,
    ln_b: Tensor | None,
    rec_mask: Tensor | None,
    zone: Tensor | None,
    valid: Tensor | None,
    flags: tuple[bool, bool],  # reverse, layer_norm
    w_keep: Tensor | SeededMask | None,
    w_scale: float,
    keep_norm_inputs: bool,
) -> SimpleNamespace:
    """The GRU's forward time loop: fills and returns its buffers, sets up ``ctx``.

    Returns ``out``, ``h`` (h_T), ``rz`` (r, z), ``n``, ``hn`` (``LN(a_n) + b_hn``, what r
    multiplies), ``prevs`` (with lengths only), ``norm`` (``a_all`` only with
    ``keep_norm_inputs``, ``mean_all``, ``rstd_all``), ``w_raw`` and ``stored_keep``.
    """
    ctx.w_seeded = w_keep if isinstance(w_keep, SeededMask) else None
    w_raw, w_hh = w_hh, dropped(w_hh, w_keep, w_scale)  # keeps the mask (or seed) only
    ctx.w_scale = w_scale
    ctx.flags = flags
    reverse, layer_norm = flags
    steps, batch, width = gx.shape
    hidden = width // 3
    norm = norm_buffers(gx, layer_norm, keep_inputs=keep_norm_inputs)
    out = huge_pages.new_empty(gx, steps, *h0.shape)  # (T, B, H)
    rz_all = huge_pages.new_empty(gx, steps, batch, 2 * hidden)  # r, z
    n_all = huge_pages.new_empty(gx, steps, batch, hidden)
    hn_all = huge_pages.empty_like(n_all)  # LN(a_n) + b_hn: what r multiplies
    prevs = huge_pages.empty_like(n_all) if valid is not None else None  # lengths only
    ctx.native = native.usable(gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask)
    h = time_loops(ctx.native).gru_forward(
        gx.contiguous(), h0, w_hh, b_hh, ln_w, ln_b, rec_mask, dense(zone),
        flat_valid(valid), reverse, layer_norm, out, rz_all, n_all, hn_all, prevs, *norm,
    )  # fmt: skip
    stored_keep = None if ctx.w_seeded is not None else w_keep
    return SimpleNamespace(
        out=out, h=h, rz=rz_all, n=n_all, hn=hn_all, prevs=prevs, norm=norm, w_raw=w_raw,
        stored_keep=stored_keep,
    )  # fmt: skip


def gru_backward_pass(
    ctx: Any,
    d_out: Tensor,
    d_h: Tensor,
    w_hh: Tensor,
    w_keep: Tensor | None,
    ln_w: Tensor | None,
    rec_mask: Tensor | None,
    zone: Tensor | None,
    valid: Tensor | None,
    gates: tuple[Tensor, Tensor, Tensor],  # rz, n, hn
    prevs: Tensor | None,
    h0: Tensor | None,
    out: Tensor | None,
    norm: tuple[Any, Any, Any],
    needs: tuple[bool, ...],  # gx, h0, w_hh, b_hh, ln_w, ln_b
) -> tuple[Tensor | None, ...]:
    """BPTT of :func:`gru_forward_pass`: grads of ``(gx, h0, w_hh, b_hh, ln_w, ln_b)``."""
    a_all, mean_all, rstd_all = norm
    rz_all, n_all, hn_all = gates
    keep: Tensor | SeededMask | None = w_keep
    if ctx.w_seeded is not None:
        keep = ctx.w_seeded  # applied from its seed, never materialized
    w_hh = dropped(w_hh, keep, ctx.w_scale)  # the masked W_hh forward used
    reverse, layer_norm = ctx.flags
    previous = PreviousStates(prevs, out, h0, rec_mask, reverse)
    if layer_norm:
        a_all = norm_inputs(a_all, previous, w_hh)
    d_gx_all = huge_pages.new_empty(hn_all, *hn_all.shape[:2], 3 * hn_all.shape[2])  # (T, B, 3H)
    d_gh_all = huge_pages.empty_like(d_gx_all)  # grad of LN(a) + b_hh
    d_a_all = huge_pages.empty_like(d_gx_all) if layer_norm else d_gh_all
    d_ln = norm_grad_buffers(d_gx_all, d_gx_all.shape[-1], layer_norm, needs[4:6])
    grad = time_loops(ctx.native).gru_backward(
        output_grad(d_out), d_h, w_hh, ln_w, rec_mask, dense(zone), flat_valid(valid),
        rz_all, n_all, hn_all, previous.states(), a_all, mean_all, rstd_all, reverse, layer_norm,
        d_gx_all, d_gh_all, d_a_all if layer_norm else None, *d_ln,
    )  # fmt: skip
    return (
        d_gx_all if needs[0] else None,
        grad if needs[1] else None,
        undropped_grad(previous.weight_grad(d_a_all) if needs[2] else None, keep, ctx.w_scale),
        sum_rows(d_gh_all) if needs[3] else None,
        *d_ln,
    )


class GRUFunction(torch.autograd.Function):
    """The GRU step of ``rnnlab.nn.steps`` (reset gate after the matmul) over time."""

    @staticmethod
    def forward(
        ctx: Any,
        gx: Tensor,  # (T, B, 3H)
        h0: Tensor,  # (B, H)
        w_hh: Tensor,  # (3H, H)
        b_hh: Tensor | None,  # (3H,)
        ln_w: Tensor | None,  # (3H,)
        ln_b: Tensor | None,
        rec_mask: Tensor | None,  # (B, H)
        zone: Tensor | None,  # (T, B, H)
        valid: Tensor | None,  # (T, B, 1) bool
        reverse: bool,
        layer_norm: bool,
        w_keep: Tensor | SeededMask | None,  # DropConnect's bool mask of W_hh, or None
        w_scale: float,  # 1 / (1 - p)
    ) -> tuple[Tensor, Tensor]:
        run = gru_forward_pass(
            ctx, gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask, zone, valid, (reverse, layer_norm),
            w_keep, w_scale, keep_norm_inputs=False,
        )  # fmt: skip
        rebuild = (h0, run.out) if run.prevs is None else (None, None)
        ctx.save_for_backward(
            run.w_raw, run.stored_keep, ln_w, rec_mask, zone, valid, run.rz, run.n, run.hn,
            run.prevs, *rebuild, *run.norm,
        )  # fmt: skip
        return run.out, run.h

    @staticmethod
    @once_differentiable
    @full_precision_backward
    def backward(ctx: Any, d_out: Tensor, d_h: Tensor) -> Grads:
        (w_hh, w_keep, ln_w, rec_mask, zone, valid, rz_all, n_all, hn_all, prevs, h0, out, a_all,
         mean_all, rstd_all) = ctx.saved_tensors  # fmt: skip
        grads = gru_backward_pass(
            ctx, d_out, d_h, w_hh, w_keep, ln_w, rec_mask, zone, valid, (rz_all, n_all, hn_all),
            prevs, h0, out, (a_all, mean_all, rstd_all), ctx.needs_input_grad[:6],
        )  # fmt: skip
        return (*grads, *([None] * 7))
