"""The fused BPTT's time loops in Python, with the same signatures as the native C++ ops.

``rnnlab.nn.fused_bptt`` hands the same inputs and preallocated buffers to one of two loop
implementations: ``torch.ops.rnnlab_native`` (compiled, CPU float32/float64) or these
functions (any device and dtype: the GPU path). Each forward fills its buffers step by step
and returns the final state; each backward walks the steps in the opposite order, fills the
gradient buffers and returns the gradient of the initial state. The math, per family, is
in ``rnnlab.nn.steps`` and ``rnnlab.nn.fused_bptt``; the weight gradients, batched over all
steps, stay in ``fused_bptt``.

Conventions shared with the native ops:

- ``zone``: zoneout's weight of the previous state per step, ``(T, B, H)``: bool in
  training (``True`` keeps the previous value) or float (the constant ``p`` in eval);
- ``valid``: ``(T, B)`` bool, ``False`` past a sequence's length;
- ``a_all``: the recurrent layer norm's inputs ``h_rec W_hh^T`` of all steps, or ``None``
  where backward recomputes them; ``mean_all``/``rstd_all`` its statistics ``(T, B, 1)``;
- gradient buffers given as ``None`` are not asked for; ``d_a_all`` is ``None`` without
  layer norm (the pre-activation gradient stands in for it).

On CUDA every function is replayed as a CUDA graph once a shape repeats
(``rnnlab.nn.cuda_graphs``): the loops launch a few small kernels per step, which a graph
replays without Python.

Example:
    >>> import torch
    >>> gx, h0, w = torch.randn(4, 2, 3), torch.zeros(2, 3), torch.randn(3, 3)
    >>> out, acts = torch.empty(4, 2, 3), torch.empty(4, 2, 3)
    >>> h = rnn_forward(gx, h0, w, None, None, None, None, None, None, False, False, False,
    ...                 out, acts, None, None, None, None)
    >>> torch.equal(h, out[-1])
    True
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from rnnlab.nn.loop_parts import (
    Recurrence,
    SavedNorm,
    Statistics,
    as_column,
    at_step,
    fill_norm_grads,
    mix,
    mix_into,
    new_weights,
    norm_forward,
    norm_input_grad,
    plus,
    relu_into,
    step_order,
    through_recurrence,
    unmix,
    zero_past_end,
    zone_weights,
)

# ------------------------------------------------------------------------------- simple RNN


def rnn_forward(
    gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None, ln_w: Tensor | None,
    ln_b: Tensor | None, rec_mask: Tensor | None, zone: Tensor | None, valid: Tensor | None,
    relu: bool, reverse: bool, layer_norm: bool, out: Tensor, acts: Tensor,
    prevs: Tensor | None, a_all: Tensor | None, mean_all: Tensor | None,
    rstd_all: Tensor | None,
) -> Tensor:  # fmt: skip
    """Fills ``out``, ``acts`` (may be ``out`` itself), ``prevs``, the LN buffers; returns h_T."""
    recurrence = Recurrence(
        w_hh, (ln_w, ln_b) if layer_norm else None, a_all, mean_all, rstd_all, gx
    )
    weights, held = zone_weights(zone, gx.dtype), as_column(valid)
    zero = zero_past_end(valid, gx)
    base = gx if b_hh is None else gx + b_hh  # (T, B, H)
    h = h0
    for t in step_order(gx.shape[0], reverse):
        if prevs is not None:
            prevs[t] = h
        h_rec = h if rec_mask is None else h * rec_mask
        pre = recurrence.add_to(t, base[t], h_rec)
        new = relu_into(pre, acts[t]) if relu else torch.tanh(pre, out=acts[t])
        h = mix_into(new, h, at_step(weights, t), at_step(held, t), out[t], zero)
    recurrence.statistics.write()
    return h


def rnn_backward(
    d_out: Tensor, d_h: Tensor, w_hh: Tensor, ln_w: Tensor | None, rec_mask: Tensor | None,
    zone: Tensor | None, valid: Tensor | None, acts: Tensor, a_all: Tensor | None,
    mean_all: Tensor | None, rstd_all: Tensor | None, relu: bool, reverse: bool,
    layer_norm: bool, d_pre_all: Tensor, d_a_all: Tensor | None, d_ln_w: Tensor | None,
    d_ln_b: Tensor | None,
) -> Tensor:  # fmt: skip
    """Fills ``d_pre_all`` (= dgx), ``d_a_all`` and the LN gradients; returns dh_0."""
    weights, held = zone_weights(zone, acts.dtype), as_column(valid)
    keep_new = new_weights(weights)
    slope = (acts > 0).to(acts.dtype) if relu else 1.0 - acts * acts  # act'(pre)
    norm = SavedNorm.of(layer_norm, ln_w, a_all, mean_all, rstd_all)
    grad = d_h
    for t in step_order(acts.shape[0], not reverse):
        d_new, d_prev = unmix(
            grad, d_out[t], at_step(weights, t), at_step(keep_new, t), at_step(held, t)
        )
        d_pre = torch.mul(d_new, slope[t], out=d_pre_all[t])
        grad = plus(d_prev, through_recurrence(t, d_pre, norm, d_a_all, w_hh, rec_mask))
    if norm is not None:
        norm.fill_param_grads((d_ln_w, d_ln_b), d_pre_all)
    return grad


# ------------------------------------------------------------------------------- LSTM


def lstm_forward(
    gx: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
    ln_w: Tensor | None, ln_b: Tensor | None, lnc_w: Tensor | None, lnc_b: Tensor | None,
    w_hr: Tensor | None, rec_mask: Tensor | None, zone_h: Tensor | None,
    zone_c: Tensor | None, valid: Tensor | None, reverse: bool, layer_norm: bool,
    out: Tensor, gates: Tensor, tanh_c: Tensor, h_prevs: Tensor | None, c_prevs: Tensor,
    c_new_all: Tensor | None, c_mean: Tensor | None, c_rstd: Tensor | None,
    a_all: Tensor | None, mean_all: Tensor | None, rstd_all: Tensor | None,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Fills ``out``, ``gates`` (i, f, g, o activated), ``tanh_c``, the previous states and
    the LN buffers; returns ``(h_T, c_T)``."""
    hidden = tanh_c.shape[-1]
    recurrence = Recurrence(
        w_hh, (ln_w, ln_b) if layer_norm else None, a_all, mean_all, rstd_all, gx
    )
    weights_h, weights_c = zone_weights(zone_h, gx.dtype), zone_weights(zone_c, gx.dtype)
    cell_statistics = Statistics(c_mean, c_rstd)
    held, zero = as_column(valid), zero_past_end(valid, gx)
    base = gx if b_hh is None else gx + b_hh  # (T, B, 4H)
    h, c = h0, c0
    for t in step_order(gx.shape[0], reverse):
        if h_prevs is not None:
            h_prevs[t] = h
        c_prevs[t] = c
        h_rec = h if rec_mask is None else h * rec_mask
        pre = recurrence.add_to(t, base[t], h_rec)  # (B, 4H)
        act = torch.sigmoid(pre, out=gates[t])
        torch.tanh(pre[:, 2 * hidden : 3 * hidden], out=act[:, 2 * hidden : 3 * hidden])
        i, f, g, o = act.chunk(4, dim=1)
        if layer_norm:  # c~_t straight into the buffer layer norm's backward reads
            c_new = torch.addcmul(f * c, i, g, out=cast(Tensor, c_new_all)[t])  # (B, H)
            normed, mean, rstd = norm_forward(c_new, (lnc_w, lnc_b))
            cell_statistics.keep(t, mean, rstd)
            squashed = torch.tanh(normed, out=tanh_c[t])
        else:
            c_new = torch.addcmul(f * c, i, g)  # (B, H)
            squashed = torch.tanh(c_new, out=tanh_c[t])
        h_new = o * squashed  # (B, H)
        if w_hr is not None:
            h_new = torch.mm(h_new, w_hr.t())  # (B, P)
        c = mix(c_new, c, at_step(weights_c, t), at_step(held, t))
        h = mix_into(h_new, h, at_step(weights_h, t), at_step(held, t), out[t], zero)
    recurrence.statistics.write()
    cell_statistics.write()
    return h, c


def lstm_backward(
    d_out: Tensor, d_h: Tensor, d_c: Tensor, w_hh: Tensor, ln_w: Tensor | None,
    lnc_w: Tensor | None, w_hr: Tensor | None, rec_mask: Tensor | None,
    zone_h: Tensor | None, zone_c: Tensor | None, valid: Tensor | None, gates: Tensor,
    tanh_c: Tensor, c_prevs: Tensor, c_new_all: Tensor | None, c_mean: Tensor | None,
    c_rstd: Tensor | None, a_all: Tensor | None, mean_all: Tensor | None,
    rstd_all: Tensor | None, reverse: bool, layer_norm: bool, d_pre_all: Tensor,
    d_a_all: Tensor | None, d_lnc_all: Tensor | None, d_hnew_all: Tensor | None,
    d_ln_w: Tensor | None, d_ln_b: Tensor | None, d_lnc_w: Tensor | None,
    d_lnc_b: Tensor | None,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Fills ``d_pre_all`` (= dgx), ``d_a_all``, ``d_lnc_all``, ``d_hnew_all`` and the LN
    gradients; returns ``(dh_0, dc_0)``."""
    weights_h, weights_c = zone_weights(zone_h, gates.dtype), zone_weights(zone_c, gates.dtype)
    keep_h, keep_c = new_weights(weights_h), new_weights(weights_c)
    held = as_column(valid)
    i, f, g, o = gates.chunk(4, dim=-1)  # each (T, B, H)
    # Elementwise factors of the chain rule, for all steps at once:
    # d_pre = [dc*g, dc*c_prev, dc*i, dh*tanh_c] * [i', f', g', o'] = cat(dc x3, dh) * coef
    coef = torch.cat(
        (g * i * (1 - i), c_prevs * f * (1 - f), i * (1 - g * g), tanh_c * o * (1 - o)), -1
    )  # (T, B, 4H)
    through_tanh = o * (1 - tanh_c * tanh_c)  # d c~ (or LN_c out) per d h~, (T, B, H)
    norm = SavedNorm.of(layer_norm, ln_w, a_all, mean_all, rstd_all)
    grad_h, grad_c = d_h, d_c
    for t in step_order(gates.shape[0], not reverse):
        d_hnew, d_h_prev = unmix(
            grad_h, d_out[t], at_step(weights_h, t), at_step(keep_h, t), at_step(held, t)
        )
        d_cnew, d_c_prev = unmix(
            grad_c, None, at_step(weights_c, t), at_step(keep_c, t), at_step(held, t)
        )
        if w_hr is not None:
            cast(Tensor, d_hnew_all)[t] = d_hnew
            d_hnew = torch.mm(d_hnew, w_hr)  # (B, H)
        if layer_norm:
            d_normed = torch.mul(d_hnew, through_tanh[t], out=cast(Tensor, d_lnc_all)[t])
            d_cnew = d_cnew + norm_input_grad(
                d_normed, cast(Tensor, c_new_all)[t], cast(Tensor, c_mean)[t],
                cast(Tensor, c_rstd)[t], lnc_w,
            )  # fmt: skip
        else:
            d_cnew = torch.addcmul(d_cnew, d_hnew, through_tanh[t])
        d_pre = torch.mul(torch.cat((d_cnew, d_cnew, d_cnew, d_hnew), 1), coef[t], out=d_pre_all[t])
        grad_h = plus(d_h_prev, through_recurrence(t, d_pre, norm, d_a_all, w_hh, rec_mask))
        grad_c = d_cnew * f[t] if d_c_prev is None else torch.addcmul(d_c_prev, d_cnew, f[t])
    if norm is not None:
        norm.fill_param_grads((d_ln_w, d_ln_b), d_pre_all)
        fill_norm_grads(
            (d_lnc_w, d_lnc_b), cast(Tensor, d_lnc_all), cast(Tensor, c_new_all),
            cast(Tensor, c_mean), cast(Tensor, c_rstd),
        )  # fmt: skip
    return grad_h, grad_c


# ------------------------------------------------------------------------------- GRU


def gru_forward(
    gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None, ln_w: Tensor | None,
    ln_b: Tensor | None, rec_mask: Tensor | None, zone: Tensor | None,
    valid: Tensor | None, reverse: bool, layer_norm: bool, out: Tensor, rz_all: Tensor,
    n_all: Tensor, hn_all: Tensor, prevs: Tensor | None, a_all: Tensor | None,
    mean_all: Tensor | None, rstd_all: Tensor | None,
) -> Tensor:  # fmt: skip
    """Fills ``out``, ``rz_all`` (r, z), ``n_all``, ``hn_all`` (LN(a_n) + b_hn), ``prevs``
    and the LN buffers; returns h_T."""
    hidden = n_all.shape[-1]
    recurrence = Recurrence(
        w_hh, (ln_w, ln_b) if layer_norm else None, a_all, mean_all, rstd_all, gx
    )
    weights, held = zone_weights(zone, gx.dtype), as_column(valid)
    zero = zero_past_end(valid, gx)
    # r and z take b_hh outside the reset product, n inside it: r * (LN(a_n) + b_hn)
    b_hn = None if b_hh is None else b_hh[2 * hidden :]
    base = gx if b_hh is None else gx + torch.cat((b_hh[: 2 * hidden], b_hh.new_zeros(hidden)))
    h = h0
    for t in step_order(gx.shape[0], reverse):
        if prevs is not None:
            prevs[t] = h
        h_rec = h if rec_mask is None else h * rec_mask
        gh = recurrence.project(t, h_rec)  # (B, 3H)
        rz = torch.sigmoid(base[t, :, : 2 * hidden] + gh[:, : 2 * hidden], out=rz_all[t])
        r, z = rz.chunk(2, dim=1)
        if b_hn is None:
            h_n = hn_all[t].copy_(gh[:, 2 * hidden :])
        else:
            h_n = torch.add(gh[:, 2 * hidden :], b_hn, out=hn_all[t])
        n = torch.tanh(torch.addcmul(base[t, :, 2 * hidden :], r, h_n), out=n_all[t])
        h_new = torch.lerp(n, h, z)  # (1 - z) * n + z * h
        h = mix_into(h_new, h, at_step(weights, t), at_step(held, t), out[t], zero)
    recurrence.statistics.write()
    return h


def gru_backward(
    d_out: Tensor, d_h: Tensor, w_hh: Tensor, ln_w: Tensor | None, rec_mask: Tensor | None,
    zone: Tensor | None, valid: Tensor | None, rz_all: Tensor, n_all: Tensor,
    hn_all: Tensor, prevs: Tensor, a_all: Tensor | None, mean_all: Tensor | None,
    rstd_all: Tensor | None, reverse: bool, layer_norm: bool, d_gx_all: Tensor,
    d_gh_all: Tensor, d_a_all: Tensor | None, d_ln_w: Tensor | None, d_ln_b: Tensor | None,
) -> Tensor:  # fmt: skip
    """Fills ``d_gx_all``, ``d_gh_all`` (grad of LN(a) + b_hh), ``d_a_all`` and the LN
    gradients; returns dh_0."""
    weights, held = zone_weights(zone, n_all.dtype), as_column(valid)
    keep_new = new_weights(weights)
    r, z = rz_all.chunk(2, dim=-1)
    d_n_pre = (1 - z) * (1 - n_all * n_all)  # d pre_n per d h~
    d_r_pre = d_n_pre * hn_all * r * (1 - r)
    d_z_pre = (prevs - n_all) * z * (1 - z)
    coef_x = torch.cat((d_r_pre, d_z_pre, d_n_pre), -1)  # dgx_t = dh~ x3 * coef_x
    coef_h = torch.cat((d_r_pre, d_z_pre, d_n_pre * r), -1)  # dgh_t = dh~ x3 * coef_h
    norm = SavedNorm.of(layer_norm, ln_w, a_all, mean_all, rstd_all)
    grad = d_h
    for t in step_order(rz_all.shape[0], not reverse):
        d_new, d_prev = unmix(
            grad, d_out[t], at_step(weights, t), at_step(keep_new, t), at_step(held, t)
        )
        tiled = torch.cat((d_new, d_new, d_new), 1)  # (B, 3H)
        torch.mul(tiled, coef_x[t], out=d_gx_all[t])
        d_gh = torch.mul(tiled, coef_h[t], out=d_gh_all[t])
        grad = d_new * z[t] if d_prev is None else torch.addcmul(d_prev, d_new, z[t])
        grad = grad + through_recurrence(t, d_gh, norm, d_a_all, w_hh, rec_mask)
    if norm is not None:
        norm.fill_param_grads((d_ln_w, d_ln_b), d_gh_all)
    return grad


# ------------------------------------------------------------------------- rebuilt activations


def _normalized(
    a: Tensor, mean: Tensor, rstd: Tensor, gain: Tensor | None, shift: Tensor | None
) -> Tensor:
    """``(a - mean) * rstd * gain + shift`` with kept statistics (``gain``/``shift`` optional)."""
    y = (a - mean) * rstd
    if gain is not None:
        y = y * gain
    return y if shift is None else y + shift


def rnn_rebuild(
    a_in: Tensor, in_mean: Tensor, in_rstd: Tensor, in_gain: Tensor | None,
    in_shift: Tensor | None, a_all: Tensor, mean_all: Tensor, rstd_all: Tensor,
    ln_w: Tensor | None, ln_shift: Tensor | None, relu: bool, acts: Tensor,
) -> None:  # fmt: skip
    """Fills ``acts = act(LN_ih(a_in) + LN_hh(a_all))`` from kept layer-norm inputs and stats."""
    pre = _normalized(a_in, in_mean, in_rstd, in_gain, in_shift) + _normalized(
        a_all, mean_all, rstd_all, ln_w, ln_shift
    )
    if relu:
        relu_into(pre, acts)
    else:
        torch.tanh(pre, out=acts)


def gru_rebuild(
    a_in: Tensor, in_mean: Tensor, in_rstd: Tensor, in_gain: Tensor | None,
    in_shift: Tensor | None, a_all: Tensor, mean_all: Tensor, rstd_all: Tensor,
    ln_w: Tensor | None, ln_shift: Tensor | None, rz_all: Tensor, n_all: Tensor,
    hn_all: Tensor,
) -> None:  # fmt: skip
    """Fills the GRU's ``r|z``, ``n`` and ``hn = gh[n]`` from kept layer-norm inputs and stats."""
    gx = _normalized(a_in, in_mean, in_rstd, in_gain, in_shift)
    gh = _normalized(a_all, mean_all, rstd_all, ln_w, ln_shift)
    hidden = gx.shape[-1] // 3
    torch.sigmoid(gx[..., : 2 * hidden] + gh[..., : 2 * hidden], out=rz_all)
    hn_all.copy_(gh[..., 2 * hidden :])
    torch.tanh(torch.addcmul(gx[..., 2 * hidden :], rz_all[..., :hidden], hn_all), out=n_all)


# ------------------------------------------------------------------------------- recurrent inputs


def recurrent_inputs(
    acts: Tensor, h0: Tensor, zone: Tensor | None, rec_mask: Tensor | None, reverse: bool,
    h_rec: Tensor,
) -> None:  # fmt: skip
    """Fills ``h_rec_t = state_{t-1} * rec_mask`` in run order from the activations ``h~``.

    ``state_{-1} = h0``, ``state_t = zone_t ? state_{t-1} : acts_t`` (a bool zoneout mask;
    without one ``state_t = acts_t``): the inputs of ``W_hh`` of a layer without lengths,
    which its weight gradient multiplies. ``rec_mask`` may be ``None``.
    """
    state = h0
    for t in step_order(acts.shape[0], reverse):
        if rec_mask is None:
            h_rec[t].copy_(state)
        else:
            torch.mul(state, rec_mask, out=h_rec[t])
        state = acts[t] if zone is None else torch.where(zone[t], state, acts[t])


# The buffers each loop writes (a CUDA-graph replay copies them back to the caller's).
WRITES: dict[str, tuple[str, ...]] = {
    "recurrent_inputs": ("h_rec",),
    "rnn_rebuild": ("acts",),
    "gru_rebuild": ("rz_all", "n_all", "hn_all"),
    "rnn_forward": ("out", "acts", "prevs", "a_all", "mean_all", "rstd_all"),
    "rnn_backward": ("d_pre_all", "d_a_all", "d_ln_w", "d_ln_b"),
    "lstm_forward": (
        "out",
        "gates",
        "tanh_c",
        "h_prevs",
        "c_prevs",
        "c_new_all",
        "c_mean",
        "c_rstd",
        "a_all",
        "mean_all",
        "rstd_all",
    ),
    "lstm_backward": (
        "d_pre_all",
        "d_a_all",
        "d_lnc_all",
        "d_hnew_all",
        "d_ln_w",
        "d_ln_b",
        "d_lnc_w",
        "d_lnc_b",
    ),
    "gru_forward": ("out", "rz_all", "n_all", "hn_all", "prevs", "a_all", "mean_all", "rstd_all"),
    "gru_backward": ("d_gx_all", "d_gh_all", "d_a_all", "d_ln_w", "d_ln_b"),
}
