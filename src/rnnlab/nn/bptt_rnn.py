r"""rnnlab's fused BPTT for the simple RNN: one direction of one layer as one autograd node.

.. math::
    h_t = \phi(gx_t + \mathrm{LN}_{hh}(h^{rec}_{t-1} W_{hh}^T) + b_{hh}),
    \qquad h^{rec}_{t-1} = h_{t-1} \odot m_{rec}

with zoneout and lengths applied after the step (``rnnlab.nn.fused_bptt`` has the
conventions). Backward keeps ``h~`` only (the output itself without lengths).
The forward and backward passes are functions of their own, which
``rnnlab.nn.normalized_rnn`` wraps with its input projection.
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


def rnn_forward_pass(
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
    flags: tuple[bool, bool, bool],  # relu, reverse, layer_norm
    w_keep: Tensor | SeededMask | None,
    w_scale: float,
    keep_norm_inputs: bool,
) -> SimpleNamespace:
    """The simple RNN's forward time loop: fills and returns its buffers, sets up ``ctx``.

    Returns ``out``, ``h`` (h_T), ``acts`` (``h~``; ``out`` itself without lengths and with
    at most a bool zoneout mask), ``prevs`` (with lengths only), ``norm`` (``a_all``,
    ``mean_all``, ``rstd_all``; ``a_all`` only with ``keep_norm_inputs``), ``w_raw`` and
    ``stored_keep`` (the DropConnect mask to keep: ``None`` for a seeded one).
    """
    relu, reverse, layer_norm = flags
    ctx.w_seeded = w_keep if isinstance(w_keep, SeededMask) else None
    w_raw, w_hh = w_hh, dropped(w_hh, w_keep, w_scale)  # keeps the mask (or seed) only
    ctx.w_scale = w_scale
    ctx.flags = flags
    steps = gx.shape[0]
    norm = norm_buffers(gx, layer_norm, keep_inputs=keep_norm_inputs)
    out = huge_pages.new_empty(gx, steps, *h0.shape)  # (T, B, H)
    # h~_t, the activation before zoneout and lengths: without lengths, the output itself
    # wherever a zoneout mask (bool) takes the new value; where it keeps the previous one,
    # backward multiplies act'(h~_t) by 0, so the output stands in for h~_t there too.
    shared = valid is None and (zone is None or zone.dtype == torch.bool)
    acts = out if shared else huge_pages.empty_like(out)
    # h_{t-1} as step t sees it: kept only with lengths, else rebuilt from the outputs
    prevs = huge_pages.empty_like(out) if valid is not None else None
    ctx.native = native.usable(gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask)
    h = time_loops(ctx.native).rnn_forward(
        gx.contiguous(), h0, w_hh, b_hh, ln_w, ln_b, rec_mask, dense(zone),
        flat_valid(valid), relu, reverse, layer_norm, out, acts, prevs, *norm,
    )  # fmt: skip
    stored_keep = None if ctx.w_seeded is not None else w_keep
    return SimpleNamespace(
        out=out, h=h, acts=acts, prevs=prevs, norm=norm, w_raw=w_raw, stored_keep=stored_keep
    )


def rnn_backward_pass(
    ctx: Any,
    d_out: Tensor,
    d_h: Tensor,
    w_hh: Tensor,
    w_keep: Tensor | None,
    ln_w: Tensor | None,
    rec_mask: Tensor | None,
    zone: Tensor | None,
    valid: Tensor | None,
    acts: Tensor,
    prevs: Tensor | None,
    h0: Tensor | None,
    out: Tensor | None,
    norm: tuple[Any, Any, Any],
    needs: tuple[bool, ...],  # gx, h0, w_hh, b_hh, ln_w, ln_b
    h_rec_all: Tensor | None = None,
) -> tuple[Tensor | None, ...]:
    """BPTT of :func:`rnn_forward_pass`: grads of ``(gx, h0, w_hh, b_hh, ln_w, ln_b)``.

    ``h_rec_all``: ``h_{t-1} * rec_mask`` of every step where the caller has built it.
    """
    a_all, mean_all, rstd_all = norm
    keep: Tensor | SeededMask | None = w_keep
    if ctx.w_seeded is not None:
        keep = ctx.w_seeded  # applied from its seed, never materialized
    w_hh = dropped(w_hh, keep, ctx.w_scale)  # the masked W_hh forward used
    relu, reverse, layer_norm = ctx.flags
    previous = PreviousStates(prevs, out, h0, rec_mask, reverse, h_rec_all)
    if layer_norm:
        a_all = norm_inputs(a_all, previous, w_hh)
    d_pre_all = huge_pages.empty_like(acts)  # (T, B, H): grad of the pre-activation (= dgx)
    d_a_all = huge_pages.empty_like(acts) if layer_norm else d_pre_all  # grad of h_rec W^T
    d_ln_w, d_ln_b = norm_grad_buffers(acts, acts.shape[-1], layer_norm, needs[4:6])
    grad = time_loops(ctx.native).rnn_backward(
        output_grad(d_out), d_h, w_hh, ln_w, rec_mask, dense(zone), flat_valid(valid),
        acts, a_all, mean_all, rstd_all, relu, reverse, layer_norm, d_pre_all,
        d_a_all if layer_norm else None, d_ln_w, d_ln_b,
    )  # fmt: skip
    return (
        d_pre_all if needs[0] else None,
        grad if needs[1] else None,
        undropped_grad(previous.weight_grad(d_a_all) if needs[2] else None, keep, ctx.w_scale),
        sum_rows(d_pre_all) if needs[3] else None,
        d_ln_w,
        d_ln_b,
    )


class RNNFunction(torch.autograd.Function):
    """``h_t = act(gx_t + LN_hh(h_rec W_hh^T) + b_hh)`` with masks; see the module doc."""

    @staticmethod
    def forward(
        ctx: Any,
        gx: Tensor,  # (T, B, H)
        h0: Tensor,  # (B, H)
        w_hh: Tensor,  # (H, H)
        b_hh: Tensor | None,  # (H,)
        ln_w: Tensor | None,  # (H,)
        ln_b: Tensor | None,  # (H,)
        rec_mask: Tensor | None,  # (B, H)
        zone: Tensor | None,  # (T, B, H)
        valid: Tensor | None,  # (T, B, 1) bool
        relu: bool,
        reverse: bool,
        layer_norm: bool,
        w_keep: Tensor | SeededMask | None,  # DropConnect's bool mask of W_hh, or None
        w_scale: float,  # 1 / (1 - p)
    ) -> tuple[Tensor, Tensor]:
        run = rnn_forward_pass(
            ctx, gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask, zone, valid,
            (relu, reverse, layer_norm), w_keep, w_scale, keep_norm_inputs=False,
        )  # fmt: skip
        rebuild = (h0, run.out) if run.prevs is None else (None, None)
        ctx.save_for_backward(
            run.w_raw, run.stored_keep, ln_w, rec_mask, zone, valid, run.acts, run.prevs,
            *rebuild, *run.norm,
        )  # fmt: skip
        return run.out, run.h

    @staticmethod
    @once_differentiable
    @full_precision_backward
    def backward(ctx: Any, d_out: Tensor, d_h: Tensor) -> Grads:
        (w_hh, w_keep, ln_w, rec_mask, zone, valid, acts, prevs, h0, out, a_all, mean_all,
         rstd_all) = ctx.saved_tensors  # fmt: skip
        grads = rnn_backward_pass(
            ctx, d_out, d_h, w_hh, w_keep, ln_w, rec_mask, zone, valid, acts, prevs, h0, out,
            (a_all, mean_all, rstd_all), ctx.needs_input_grad[:6],
        )  # fmt: skip
        return (*grads, *([None] * 8))
