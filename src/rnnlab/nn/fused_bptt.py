"""rnnlab's fused BPTT: one direction of one layer as a single autograd node.

torch's fused kernels cannot run layer normalization, recurrent dropout or zoneout. The
reference time loop (``RecurrentLayer._run_direction``) runs them through autograd step by
step, which records a dozen small nodes per step and walks them one by one backward. Here the
same recurrence is one ``torch.autograd.Function`` per cell family:

- forward runs the steps into preallocated ``(T, B, .)`` buffers and keeps what backward
  needs (gate activations, the state fed to ``W_hh``, layer-norm statistics);
- backward is hand-derived backpropagation through time: per step only the elementwise
  chain rule and one ``(B, G*H) @ (G*H, H)`` matrix multiply; the parameter gradients come
  after the loop, batched over time::

      dW_hh = dA^T @ H_rec     dA: (T*B, G*H), H_rec: (T*B, H_out)   one matmul, all steps
      db_hh = sum of dA        dgain, dbias of layer norm: sums over (T, B) likewise

The input projections ``gx = LN_ih(x W_ih^T) + b_ih`` of all steps come in precomputed (one
matrix multiply outside, under ordinary autograd); their gradient ``dgx`` goes out.

Masks come in drawn by the caller, so the function is deterministic (and gradcheck-able):

- ``rec_mask`` ``(B, H_out)``: recurrent dropout, ``h_rec = h_{t-1} * rec_mask``;
- ``zone_h`` ``(T, B, H_out)`` and, for LSTM, ``zone_c`` ``(T, B, H)``: the weight of the
  previous value, ``h_t = zone * h_{t-1} + (1 - zone) * h~_t``; in training a Bernoulli
  draw per step (a bool mask, or 0/1), the constant ``p`` in eval mode;
- ``valid`` ``(T, B, 1)`` bool: inside the sequence. Outside, the state is held and the
  output is zero, exactly as in the reference loop.

Memory kept for backward: the activations each family's chain rule needs (RNN: ``h~``;
LSTM: the four gates, ``tanh(c)``, ``c_{t-1}``; GRU: ``r``, ``z``, ``n`` and the reset
product's operand), layer-norm inputs and statistics, and masks as bool. ``h_{t-1}`` is
rebuilt from the outputs unless lengths are given (then the state is held past a sequence's
end and differs from the output), and without lengths the RNN's ``h~`` is the output itself
(with a zoneout mask, wherever the mask takes the new value; elsewhere its gradient is 0).

``reverse=True`` runs ``t = T-1 .. 0``. The equations are those of ``rnnlab.nn.steps``.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnlab.nn import native
from rnnlab.nn.precision import full_precision_backward
from rnnlab.nn.regularizers import SeededMask, apply_drop_connect
from rnnlab.nn.steps import LAYER_NORM_EPS, Norm

Grads = tuple[Tensor | None, ...]


# ------------------------------------------------------------------------------- helpers


def _order(steps: int, reverse: bool) -> range:
    return range(steps - 1, -1, -1) if reverse else range(steps)


def _norm_forward(a: Tensor, norm: tuple[Tensor | None, Tensor | None]) -> tuple[Tensor, ...]:
    """Layer norm of ``a`` (B, N) returning ``(out, mean, rstd)`` in one kernel."""
    weight, bias = norm
    out, mean, rstd = torch.native_layer_norm(a, (a.shape[-1],), weight, bias, LAYER_NORM_EPS)
    return out, mean, rstd


def _norm_input_grad(
    grad: Tensor, a: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor | None
) -> Tensor:
    """Gradient of layer norm with respect to its input only (one kernel)."""
    d_a, _, _ = torch.ops.aten.native_layer_norm_backward(
        grad, a, (a.shape[-1],), mean, rstd, weight, None, [True, False, False]
    )
    return cast(Tensor, d_a)


def _norm_param_grads(
    grad_all: Tensor, a_all: Tensor, mean_all: Tensor, rstd_all: Tensor, needs: tuple[bool, bool]
) -> tuple[Tensor | None, Tensor | None]:
    """Gain and bias gradients of layer norm, summed over all steps and the batch at once."""
    flat = grad_all.reshape(-1, grad_all.shape[-1])  # (T*B, N)
    d_weight = None
    if needs[0]:
        xhat = (a_all - mean_all) * rstd_all  # (T, B, N)
        d_weight = (grad_all * xhat).reshape(-1, grad_all.shape[-1]).sum(0)
    d_bias = flat.sum(0) if needs[1] else None
    return d_weight, d_bias


def _norm_grad_buffers(
    like: Tensor, width: int, layer_norm: bool, needs: tuple[bool, ...]
) -> tuple[Tensor | None, Tensor | None]:
    """Output buffers ``(width,)`` for a layer norm's gain and bias gradients, where needed."""
    if not layer_norm:
        return None, None
    return (
        like.new_empty(width) if needs[0] else None,
        like.new_empty(width) if needs[1] else None,
    )


def _split_norm(norm: Norm) -> tuple[Tensor | None, Tensor | None]:
    return (None, None) if norm is None else norm


def _mix_and_hold(
    new: Tensor, prev: Tensor, zone: Tensor | None, valid: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Zoneout then lengths: returns ``(state_t, output_t)``."""
    if zone is not None:
        new = zone * prev + (1.0 - zone) * new
    if valid is None:
        return new, new
    return torch.where(valid, new, prev), torch.where(valid, new, torch.zeros_like(new))


def _unmix(
    grad_state: Tensor, grad_out: Tensor | None, zone: Tensor | None, valid: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Backward of :func:`_mix_and_hold`: ``(grad wrt the step's new value, grad wrt prev)``."""
    total = grad_state if grad_out is None else grad_state + grad_out
    if valid is None:
        d_mixed, d_prev = total, None
    else:
        d_mixed = torch.where(valid, total, torch.zeros_like(total))
        d_prev = torch.where(valid, torch.zeros_like(grad_state), grad_state)
    if zone is None:
        return d_mixed, d_prev if d_prev is not None else torch.zeros_like(grad_state)
    through_prev = zone * d_mixed
    d_prev = through_prev if d_prev is None else d_prev + through_prev
    return (1.0 - zone) * d_mixed, d_prev


def _weight_grad(d_a_all: Tensor, inputs_all: Tensor) -> Tensor:
    """``sum_t dA_t^T @ X_t`` as one matmul: ``(N, T*B) @ (T*B, K)``."""
    return torch.mm(
        d_a_all.reshape(-1, d_a_all.shape[-1]).t(), inputs_all.reshape(-1, inputs_all.shape[-1])
    )


def _sum_rows(grad_all: Tensor) -> Tensor:
    return grad_all.reshape(-1, grad_all.shape[-1]).sum(0)


def _at(mask: Tensor | None, t: int) -> Tensor | None:
    return None if mask is None else mask[t]


def _weights(zone: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """A zoneout mask as weights of the previous value: a bool mask becomes 0/1 in ``dtype``."""
    if zone is None or zone.dtype != torch.bool:
        return zone
    return zone.to(dtype)


def _previous_states(out: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    """``h_{t-1}`` as step ``t`` saw it, rebuilt from the outputs (exact without lengths)."""
    first = h0.unsqueeze(0)
    return torch.cat((out[1:], first)) if reverse else torch.cat((first, out[:-1]))


def _restore(
    prevs: Tensor | None,
    out: Tensor,
    h0: Tensor,
    rec_mask: Tensor | None,
    a_all: Tensor | None,
    w_hh: Tensor,
    reverse: bool,
    layer_norm: bool,
) -> tuple[Tensor, Tensor, Any]:
    """What forward did not keep: ``(h_{t-1}, h_rec = h_{t-1} * mask, LN inputs)`` of all steps.

    The LN inputs are ``None`` without layer norm (typed ``Any``, as ``ctx.saved_tensors``).
    """
    if prevs is None:
        prevs = _previous_states(out, h0, reverse)
    h_rec_all = prevs if rec_mask is None else prevs * rec_mask
    if layer_norm:
        a_all = _norm_inputs(a_all, h_rec_all, w_hh)
    return prevs, h_rec_all, a_all


def _norm_inputs(a_all: Tensor | None, h_rec_all: Tensor, w_hh: Tensor) -> Tensor:
    """The layer norm's inputs ``a_t = h_rec_t W_hh^T`` of all steps: kept, or recomputed."""
    return torch.matmul(h_rec_all, w_hh.t()) if a_all is None else a_all


def _dense(tensor: Tensor | None) -> Tensor | None:
    """Contiguous copy (or view) for the native loops; ``None`` stays ``None``."""
    return None if tensor is None else tensor.contiguous()


def _flat_valid(valid: Tensor | None) -> Tensor | None:
    """``(T, B, 1)`` bool as the ``(T, B)`` contiguous bool the native loops read."""
    return None if valid is None else valid.reshape(valid.shape[0], valid.shape[1]).contiguous()


def _dropped(w_hh: Tensor, keep: Tensor | None, scale: float) -> Tensor:
    """DropConnect applied inside the fused function: ``W_hh`` where ``keep``, scaled."""
    return w_hh if keep is None else apply_drop_connect(w_hh, keep, scale)


def _undropped_grad(grad: Tensor | None, keep: Tensor | None, scale: float) -> Tensor | None:
    """The gradient of the raw ``W_hh`` from that of the masked one (the same map)."""
    return grad if grad is None or keep is None else apply_drop_connect(grad, keep, scale)


class _Recurrence:
    """The recurrent projection ``LN_hh(h_rec W_hh^T)`` with its statistics kept per step.

    With ``keep_inputs=False`` the layer norm's input ``a_t = h_rec W_hh^T`` is not kept:
    backward recomputes all of them in one matrix multiply (:func:`_norm_inputs`), which
    saves a ``(T, B, G*H)`` buffer for a few percent more time.
    """

    def __init__(
        self,
        gx: Tensor,
        w_hh: Tensor,
        norm: tuple[Tensor | None, Tensor | None] | None,
        keep_inputs: bool = True,
    ):
        steps, batch, width = gx.shape
        self.w_t = w_hh.t()
        self.norm = norm
        keep = norm is not None and keep_inputs
        self.a_all = gx.new_empty(steps, batch, width) if keep else None
        self.scratch = gx.new_empty(batch, width) if norm is not None and not keep else None
        self.mean_all = gx.new_empty(steps, batch, 1) if norm is not None else None
        self.rstd_all = gx.new_empty(steps, batch, 1) if norm is not None else None

    def project(self, t: int, h_rec: Tensor) -> Tensor:
        """``LN_hh(h_rec W_hh^T)`` for step ``t``, (B, G*H)."""
        if self.norm is None:
            return torch.mm(h_rec, self.w_t)
        into = self.scratch if self.a_all is None else self.a_all[t]
        a = torch.mm(h_rec, self.w_t, out=cast(Tensor, into))
        normed, mean, rstd = _norm_forward(a, self.norm)
        cast(Tensor, self.mean_all)[t] = mean
        cast(Tensor, self.rstd_all)[t] = rstd
        return normed

    def add_to(self, t: int, base: Tensor, h_rec: Tensor) -> Tensor:
        """``base + LN_hh(h_rec W_hh^T)`` for step ``t``, (B, G*H)."""
        if self.norm is None:
            return torch.addmm(base, h_rec, self.w_t)
        return base + self.project(t, h_rec)

    def saved(self) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        return self.a_all, self.mean_all, self.rstd_all


# ------------------------------------------------------------------------------- simple RNN


class _RNNFunction(torch.autograd.Function):
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
        ctx.w_seeded = w_keep if isinstance(w_keep, SeededMask) else None
        keep = w_keep.materialize() if isinstance(w_keep, SeededMask) else w_keep
        w_raw, w_hh = w_hh, _dropped(w_hh, keep, w_scale)  # keeps the mask (or seed), not the copy
        stored_keep = None if ctx.w_seeded is not None else keep
        ctx.w_scale = w_scale
        steps = gx.shape[0]
        norm = (ln_w, ln_b) if layer_norm else None
        recurrence = _Recurrence(gx, w_hh, norm, keep_inputs=False)
        out = gx.new_empty(steps, *h0.shape)  # (T, B, H)
        # h~_t, the activation before zoneout and lengths: without lengths, the output itself
        # wherever a zoneout mask (bool) takes the new value; where it keeps the previous one,
        # backward multiplies act'(h~_t) by 0, so the output stands in for h~_t there too.
        shared = valid is None and (zone is None or zone.dtype == torch.bool)
        acts = out if shared else torch.empty_like(out)
        # h_{t-1} as step t sees it: kept only with lengths, else rebuilt from the outputs
        prevs = torch.empty_like(out) if valid is not None else None
        ctx.native = native.usable(gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask)
        if ctx.native:  # zoneout masks go as they are (bool in training)
            h = native.ops().rnn_forward(
                gx.contiguous(), h0, w_hh, b_hh, ln_w, ln_b, rec_mask, _dense(zone),
                _flat_valid(valid), relu, reverse, layer_norm, out, acts, prevs,
                *recurrence.saved(),
            )  # fmt: skip
        else:
            weights = _weights(zone, gx.dtype)
            base = gx if b_hh is None else gx + b_hh  # (T, B, H)
            h = h0
            for t in _order(steps, reverse):
                if prevs is not None:
                    prevs[t] = h
                h_rec = h if rec_mask is None else h * rec_mask
                pre = recurrence.add_to(t, base[t], h_rec)
                if relu:
                    new = torch.clamp_min(pre, 0.0, out=acts[t])
                else:
                    new = torch.tanh(pre, out=acts[t])
                h, out[t] = _mix_and_hold(new, h, _at(weights, t), _at(valid, t))
        rebuild = (h0, out) if prevs is None else (None, None)
        ctx.save_for_backward(
            w_raw,
            stored_keep,
            ln_w,
            rec_mask,
            zone,
            valid,
            acts,
            prevs,
            *rebuild,
            *recurrence.saved(),
        )
        ctx.flags = (relu, reverse, layer_norm)
        return out, h

    @staticmethod
    @once_differentiable
    @full_precision_backward
    def backward(ctx: Any, d_out: Tensor, d_h: Tensor) -> Grads:
        (w_hh, w_keep, ln_w, rec_mask, zone, valid, acts, prevs, h0, out, a_all, mean_all,
         rstd_all) = ctx.saved_tensors  # fmt: skip
        if ctx.w_seeded is not None:
            w_keep = ctx.w_seeded.materialize()
        w_hh = _dropped(w_hh, w_keep, ctx.w_scale)  # the masked W_hh forward used
        relu, reverse, layer_norm = ctx.flags
        prevs, h_rec_all, a_all = _restore(
            prevs, out, h0, rec_mask, a_all, w_hh, reverse, layer_norm
        )
        d_pre_all = torch.empty_like(acts)  # (T, B, H): grad of the pre-activation (= dgx)
        d_a_all = torch.empty_like(acts) if layer_norm else d_pre_all  # grad of h_rec W^T
        needs = ctx.needs_input_grad
        d_ln_w, d_ln_b = _norm_grad_buffers(acts, acts.shape[-1], layer_norm, needs[4:6])
        if ctx.native:
            grad = native.ops().rnn_backward(
                d_out.contiguous(), d_h, w_hh, ln_w, rec_mask, _dense(zone), _flat_valid(valid),
                acts, a_all, mean_all, rstd_all, relu, reverse, layer_norm, d_pre_all,
                d_a_all if layer_norm else None, d_ln_w, d_ln_b,
            )  # fmt: skip
        else:
            zone = _weights(zone, acts.dtype)
            slope = (acts > 0).to(acts.dtype) if relu else 1.0 - acts * acts  # act'(pre)
            grad = d_h
            for t in _order(acts.shape[0], not reverse):
                d_new, d_prev = _unmix(grad, d_out[t], _at(zone, t), _at(valid, t))
                d_a = d_pre = torch.mul(d_new, slope[t], out=d_pre_all[t])
                if layer_norm:
                    d_a = _norm_input_grad(d_pre, a_all[t], mean_all[t], rstd_all[t], ln_w)
                    d_a_all[t] = d_a
                d_rec = torch.mm(d_a, w_hh)  # (B, H)
                grad = d_prev + (d_rec if rec_mask is None else d_rec * rec_mask)
            if layer_norm:
                d_ln_w, d_ln_b = _norm_param_grads(
                    d_pre_all, a_all, mean_all, rstd_all, (needs[4], needs[5])
                )
        return (
            d_pre_all if needs[0] else None,
            grad if needs[1] else None,
            _undropped_grad(
                _weight_grad(d_a_all, h_rec_all) if needs[2] else None, w_keep, ctx.w_scale
            ),
            _sum_rows(d_pre_all) if needs[3] else None,
            d_ln_w,
            d_ln_b,
            *([None] * 8),
        )


# ------------------------------------------------------------------------------- LSTM


class _LSTMFunction(torch.autograd.Function):
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
        keep = w_keep.materialize() if isinstance(w_keep, SeededMask) else w_keep
        w_raw, w_hh = w_hh, _dropped(w_hh, keep, w_scale)  # keeps the mask (or seed), not the copy
        stored_keep = None if ctx.w_seeded is not None else keep
        ctx.w_scale = w_scale
        steps, batch, width = gx.shape
        hidden = width // 4
        recurrence = _Recurrence(gx, w_hh, (ln_w, ln_b) if layer_norm else None)
        out = gx.new_empty(steps, *h0.shape)  # (T, B, P)
        gates = torch.empty_like(gx)  # (T, B, 4H): sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        tanh_c = gx.new_empty(steps, batch, hidden)  # tanh(LN_c(c~_t))
        h_prevs = torch.empty_like(out) if valid is not None else None  # (T, B, P), lengths only
        c_prevs = torch.empty_like(tanh_c)  # (T, B, H)
        c_new_all = torch.empty_like(tanh_c) if layer_norm else None  # c~_t, input of LN_c
        c_mean = gx.new_empty(steps, batch, 1) if layer_norm else None
        c_rstd = gx.new_empty(steps, batch, 1) if layer_norm else None
        ctx.native = native.usable(gx, h0, c0, w_hh, b_hh, ln_w, ln_b, lnc_w, lnc_b, w_hr, rec_mask)
        if ctx.native:  # zoneout masks go as they are (bool in training)
            h, c = native.ops().lstm_forward(
                gx.contiguous(), h0, c0, w_hh, b_hh, ln_w, ln_b, lnc_w, lnc_b, w_hr, rec_mask,
                _dense(zone_h), _dense(zone_c), _flat_valid(valid), reverse, layer_norm, out,
                gates, tanh_c, h_prevs, c_prevs, c_new_all, c_mean, c_rstd, *recurrence.saved(),
            )  # fmt: skip
        else:
            weights_h, weights_c = _weights(zone_h, gx.dtype), _weights(zone_c, gx.dtype)
            base = gx if b_hh is None else gx + b_hh  # (T, B, 4H)
            h, c = h0, c0
            for t in _order(steps, reverse):
                if h_prevs is not None:
                    h_prevs[t] = h
                c_prevs[t] = c
                h_rec = h if rec_mask is None else h * rec_mask
                pre = recurrence.add_to(t, base[t], h_rec)  # (B, 4H)
                act = torch.sigmoid(pre, out=gates[t])
                act[:, 2 * hidden : 3 * hidden] = torch.tanh(pre[:, 2 * hidden : 3 * hidden])
                i, f, g, o = act.chunk(4, dim=1)
                c_new = torch.addcmul(f * c, i, g)  # (B, H)
                if layer_norm:
                    cast(Tensor, c_new_all)[t] = c_new
                    normed, mean, rstd = _norm_forward(c_new, (lnc_w, lnc_b))
                    cast(Tensor, c_mean)[t] = mean
                    cast(Tensor, c_rstd)[t] = rstd
                    squashed = torch.tanh(normed, out=tanh_c[t])
                else:
                    squashed = torch.tanh(c_new, out=tanh_c[t])
                h_new = o * squashed  # (B, H)
                if w_hr is not None:
                    h_new = torch.mm(h_new, w_hr.t())  # (B, P)
                c, _ = _mix_and_hold(c_new, c, _at(weights_c, t), _at(valid, t))
                h, out[t] = _mix_and_hold(h_new, h, _at(weights_h, t), _at(valid, t))
        rebuild = (h0, out) if h_prevs is None else (None, None)
        ctx.save_for_backward(
            w_raw, stored_keep, ln_w, lnc_w, w_hr, rec_mask, zone_h, zone_c, valid, gates, tanh_c,
            h_prevs, *rebuild, c_prevs, c_new_all, c_mean, c_rstd, *recurrence.saved(),
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
            w_keep = ctx.w_seeded.materialize()
        w_hh = _dropped(w_hh, w_keep, ctx.w_scale)  # the masked W_hh forward used
        reverse, layer_norm = ctx.flags
        if h_prevs is None:
            h_prevs = _previous_states(out, h0, reverse)
        d_pre_all = torch.empty_like(gates)  # (T, B, 4H) = dgx
        d_a_all = torch.empty_like(gates) if layer_norm else d_pre_all
        d_lnc_all = torch.empty_like(tanh_c) if layer_norm else None  # grad of LN_c's output
        d_hnew_all = torch.empty_like(h_prevs) if w_hr is not None else None  # (T, B, P)
        needs = ctx.needs_input_grad
        hidden = tanh_c.shape[-1]
        d_ln = _norm_grad_buffers(gates, 4 * hidden, layer_norm, needs[5:7])
        d_lnc = _norm_grad_buffers(gates, hidden, layer_norm, needs[7:9])
        if ctx.native:
            grad_h, grad_c = native.ops().lstm_backward(
                d_out.contiguous(), d_h, d_c, w_hh, ln_w, lnc_w, w_hr, rec_mask, _dense(zone_h),
                _dense(zone_c), _flat_valid(valid), gates, tanh_c, c_prevs, c_new_all, c_mean,
                c_rstd, a_all, mean_all, rstd_all, reverse, layer_norm, d_pre_all,
                d_a_all if layer_norm else None, d_lnc_all, d_hnew_all, *d_ln, *d_lnc,
            )  # fmt: skip
        else:
            zone_h, zone_c = _weights(zone_h, gates.dtype), _weights(zone_c, gates.dtype)
            i, f, g, o = gates.chunk(4, dim=-1)  # each (T, B, H)
            # Elementwise factors of the chain rule, for all steps at once:
            # d_pre = [dc*g, dc*c_prev, dc*i, dh*tanh_c] * [i', f', g', o']
            #       = cat(dc x3, dh) * coef
            coef = torch.cat(
                (g * i * (1 - i), c_prevs * f * (1 - f), i * (1 - g * g), tanh_c * o * (1 - o)), -1
            )  # (T, B, 4H)
            through_tanh = o * (1 - tanh_c * tanh_c)  # d c~ (or LN_c out) per d h~, (T, B, H)
            grad_h, grad_c = d_h, d_c
            for t in _order(gates.shape[0], not reverse):
                d_hnew, d_h_prev = _unmix(grad_h, d_out[t], _at(zone_h, t), _at(valid, t))
                d_cnew, d_c_prev = _unmix(grad_c, None, _at(zone_c, t), _at(valid, t))
                if w_hr is not None:
                    cast(Tensor, d_hnew_all)[t] = d_hnew
                    d_hnew = torch.mm(d_hnew, w_hr)  # (B, H)
                if layer_norm:
                    d_normed = torch.mul(d_hnew, through_tanh[t], out=cast(Tensor, d_lnc_all)[t])
                    d_cnew = d_cnew + _norm_input_grad(
                        d_normed, c_new_all[t], c_mean[t], c_rstd[t], lnc_w
                    )
                else:
                    d_cnew = torch.addcmul(d_cnew, d_hnew, through_tanh[t])
                d_a = d_pre = torch.mul(
                    torch.cat((d_cnew, d_cnew, d_cnew, d_hnew), 1), coef[t], out=d_pre_all[t]
                )
                if layer_norm:
                    d_a = _norm_input_grad(d_pre, a_all[t], mean_all[t], rstd_all[t], ln_w)
                    d_a_all[t] = d_a
                d_rec = torch.mm(d_a, w_hh)  # (B, P)
                grad_h = d_h_prev + (d_rec if rec_mask is None else d_rec * rec_mask)
                grad_c = torch.addcmul(d_c_prev, d_cnew, f[t])
            if layer_norm:
                d_ln = _norm_param_grads(d_pre_all, a_all, mean_all, rstd_all, needs[5:7])
                d_lnc = _norm_param_grads(
                    cast(Tensor, d_lnc_all), c_new_all, c_mean, c_rstd, needs[7:9]
                )
        h_rec_all = h_prevs if rec_mask is None else h_prevs * rec_mask
        d_w_hr = None
        if w_hr is not None and needs[9]:
            out_gate = gates[..., 3 * hidden :]  # o, (T, B, H)
            d_w_hr = _weight_grad(cast(Tensor, d_hnew_all), out_gate * tanh_c)
        return (
            d_pre_all if needs[0] else None,
            grad_h if needs[1] else None,
            grad_c if needs[2] else None,
            _undropped_grad(
                _weight_grad(d_a_all, h_rec_all) if needs[3] else None, w_keep, ctx.w_scale
            ),
            _sum_rows(d_pre_all) if needs[4] else None,
            *d_ln,
            *d_lnc,
            d_w_hr,
            *([None] * 8),
        )


# ------------------------------------------------------------------------------- GRU


class _GRUFunction(torch.autograd.Function):
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
        ctx.w_seeded = w_keep if isinstance(w_keep, SeededMask) else None
        keep = w_keep.materialize() if isinstance(w_keep, SeededMask) else w_keep
        w_raw, w_hh = w_hh, _dropped(w_hh, keep, w_scale)  # keeps the mask (or seed), not the copy
        stored_keep = None if ctx.w_seeded is not None else keep
        ctx.w_scale = w_scale
        steps, batch, width = gx.shape
        hidden = width // 3
        norm = (ln_w, ln_b) if layer_norm else None
        recurrence = _Recurrence(gx, w_hh, norm, keep_inputs=False)
        zero = gx.new_empty(steps, batch, hidden)  # (T, B, H)
        out = gx.new_empty(steps, *h0.shape)  # (T, B, H)
        rz_all = gx.new_empty(steps, batch, 2 * hidden)  # r, z
        n_all = torch.empty_like(zero)
        hn_all = torch.empty_like(zero)  # LN(a_n) + b_hn: what r multiplies
        prevs = torch.empty_like(zero) if valid is not None else None  # lengths only
        ctx.native = native.usable(gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask)
        if ctx.native:  # zoneout masks go as they are (bool in training)
            h = native.ops().gru_forward(
                gx.contiguous(), h0, w_hh, b_hh, ln_w, ln_b, rec_mask, _dense(zone),
                _flat_valid(valid), reverse, layer_norm, out, rz_all, n_all, hn_all, prevs,
                *recurrence.saved(),
            )  # fmt: skip
        else:
            weights = _weights(zone, gx.dtype)
            # r and z take b_hh outside the reset product, n inside it: r * (LN(a_n) + b_hn)
            b_hn = None if b_hh is None else b_hh[2 * hidden :]
            base = (
                gx if b_hh is None else gx + torch.cat((b_hh[: 2 * hidden], b_hh.new_zeros(hidden)))
            )
            h = h0
            for t in _order(steps, reverse):
                if prevs is not None:
                    prevs[t] = h
                h_rec = h if rec_mask is None else h * rec_mask
                gh = recurrence.project(t, h_rec)  # (B, 3H)
                rz = torch.sigmoid(base[t, :, : 2 * hidden] + gh[:, : 2 * hidden], out=rz_all[t])
                r, z = rz.chunk(2, dim=1)
                h_n = gh[:, 2 * hidden :] if b_hn is None else gh[:, 2 * hidden :] + b_hn
                hn_all[t] = h_n
                n = torch.tanh(torch.addcmul(base[t, :, 2 * hidden :], r, h_n), out=n_all[t])
                h_new = torch.lerp(n, h, z)  # (1 - z) * n + z * h
                h, out[t] = _mix_and_hold(h_new, h, _at(weights, t), _at(valid, t))
        rebuild = (h0, out) if prevs is None else (None, None)
        ctx.save_for_backward(
            w_raw, stored_keep, ln_w, rec_mask, zone, valid, rz_all, n_all, hn_all, prevs, *rebuild,
            *recurrence.saved(),
        )  # fmt: skip
        ctx.flags = (reverse, layer_norm)
        return out, h

    @staticmethod
    @once_differentiable
    @full_precision_backward
    def backward(ctx: Any, d_out: Tensor, d_h: Tensor) -> Grads:
        (w_hh, w_keep, ln_w, rec_mask, zone, valid, rz_all, n_all, hn_all, prevs, h0, out, a_all,
         mean_all, rstd_all) = ctx.saved_tensors  # fmt: skip
        if ctx.w_seeded is not None:
            w_keep = ctx.w_seeded.materialize()
        w_hh = _dropped(w_hh, w_keep, ctx.w_scale)  # the masked W_hh forward used
        reverse, layer_norm = ctx.flags
        prevs, h_rec_all, a_all = _restore(
            prevs, out, h0, rec_mask, a_all, w_hh, reverse, layer_norm
        )
        d_gx_all = hn_all.new_empty(*hn_all.shape[:2], 3 * hn_all.shape[2])  # (T, B, 3H)
        d_gh_all = torch.empty_like(d_gx_all)  # grad of LN(a) + b_hh
        d_a_all = torch.empty_like(d_gx_all) if layer_norm else d_gh_all
        needs = ctx.needs_input_grad
        d_ln = _norm_grad_buffers(d_gx_all, d_gx_all.shape[-1], layer_norm, needs[4:6])
        if ctx.native:
            grad = native.ops().gru_backward(
                d_out.contiguous(), d_h, w_hh, ln_w, rec_mask, _dense(zone), _flat_valid(valid),
                rz_all, n_all, hn_all, prevs, a_all, mean_all, rstd_all, reverse, layer_norm,
                d_gx_all, d_gh_all, d_a_all if layer_norm else None, *d_ln,
            )  # fmt: skip
        else:
            zone = _weights(zone, n_all.dtype)
            r, z = rz_all.chunk(2, dim=-1)
            d_n_pre = (1 - z) * (1 - n_all * n_all)  # d pre_n per d h~
            d_r_pre = d_n_pre * hn_all * r * (1 - r)
            d_z_pre = (prevs - n_all) * z * (1 - z)
            coef_x = torch.cat((d_r_pre, d_z_pre, d_n_pre), -1)  # dgx_t = dh~ x3 * coef_x
            coef_h = torch.cat((d_r_pre, d_z_pre, d_n_pre * r), -1)  # dgh_t = dh~ x3 * coef_h
            grad = d_h
            for t in _order(rz_all.shape[0], not reverse):
                d_new, d_prev = _unmix(grad, d_out[t], _at(zone, t), _at(valid, t))
                tiled = torch.cat((d_new, d_new, d_new), 1)  # (B, 3H)
                torch.mul(tiled, coef_x[t], out=d_gx_all[t])
                d_a = torch.mul(tiled, coef_h[t], out=d_gh_all[t])
                if layer_norm:
                    d_a = _norm_input_grad(d_a, a_all[t], mean_all[t], rstd_all[t], ln_w)
                    d_a_all[t] = d_a
                d_rec = torch.mm(d_a, w_hh)  # (B, H)
                grad = torch.addcmul(d_prev, d_new, z[t])
                grad = grad + (d_rec if rec_mask is None else d_rec * rec_mask)
            if layer_norm:
                d_ln = _norm_param_grads(d_gh_all, a_all, mean_all, rstd_all, needs[4:6])
        return (
            d_gx_all if needs[0] else None,
            grad if needs[1] else None,
            _undropped_grad(
                _weight_grad(d_a_all, h_rec_all) if needs[2] else None, w_keep, ctx.w_scale
            ),
            _sum_rows(d_gh_all) if needs[3] else None,
            *d_ln,
            *([None] * 7),
        )


# ------------------------------------------------------------------------------- entry point


def run_direction(
    family: str,
    gx: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w_hh: Tensor,
    b_hh: Tensor | None,
    *,
    ln_hh: Norm = None,
    ln_c: Norm = None,
    w_hr: Tensor | None = None,
    rec_mask: Tensor | None = None,
    zone_h: Tensor | None = None,
    zone_c: Tensor | None = None,
    valid: Tensor | None = None,
    reverse: bool = False,
    nonlinearity: str = "tanh",
    w_keep: Tensor | SeededMask | None = None,
    weight_drop: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One direction of one layer through the fused BPTT function of its family.

    Args:
        family: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        gx: input projections of all steps, ``(T, B, G*H)``, ``LN_ih`` and ``b_ih`` applied.
        h0: initial hidden state ``(B, H_out)``; c0: initial cell state ``(B, H)`` (LSTM).
        w_hh, b_hh: recurrent weight ``(G*H, H_out)`` (possibly DropConnect-masked) and bias.
        ln_hh, ln_c: layer-norm ``(gain, bias)`` of the recurrent projection and of the cell.
        w_hr: LSTM projection ``(H_out, H)``.
        rec_mask: recurrent-dropout mask ``(B, H_out)``, reused at every step.
        zone_h, zone_c: weight of the previous state per step, broadcastable to
            ``(T, B, H_out)`` / ``(T, B, H)``: in training a bool mask (``True`` keeps the
            previous value; saved for backward as bool, a quarter of the memory of 0/1
            weights) or 0/1 weights, in eval the constant ``p``.
        valid: ``(T, B, 1)`` bool, ``False`` past a sequence's length.
        reverse: run from ``t = T-1`` down to ``0``.
        nonlinearity: ``"tanh"`` or ``"relu"`` (simple RNN only).
        w_keep: DropConnect's bool mask of ``w_hh`` (``True`` keeps an entry), applied inside
            with the scale ``1 / (1 - weight_drop)``: backward keeps the mask (one byte per
            weight; nothing for a ``SeededMask``, rebuilt from its seed) and recomputes the
            masked matrix, instead of keeping a masked copy.
        weight_drop: DropConnect's probability ``p`` (only read with ``w_keep``).

    Returns:
        ``(outputs (T, B, H_out), h_T, c_T)``; ``c_T`` is ``None`` except for LSTM.

    Example:
        >>> import torch
        >>> gx, h0, w = torch.randn(5, 2, 12), torch.zeros(2, 4), torch.randn(12, 4)
        >>> out, h, _ = run_direction("gru", gx, h0, None, w, None, reverse=True)
        >>> out.shape, h.shape
        (torch.Size([5, 2, 4]), torch.Size([2, 4]))
    """
    ln_w, ln_b = _split_norm(ln_hh)
    layer_norm = ln_hh is not None
    scale = 1.0 / (1.0 - weight_drop) if w_keep is not None else 1.0
    if family == "lstm":
        if c0 is None:
            raise ValueError("run_direction: family 'lstm' needs c0, got None")
        lnc_w, lnc_b = _split_norm(ln_c)
        if layer_norm != (ln_c is not None):
            raise ValueError("run_direction: LSTM layer norm needs both ln_hh and ln_c")
        out, h, c = _LSTMFunction.apply(
            gx, h0, c0, w_hh, b_hh, ln_w, ln_b, lnc_w, lnc_b, w_hr,
            rec_mask, zone_h, zone_c, valid, reverse, layer_norm, w_keep, scale,
        )  # fmt: skip
        return out, h, c
    if family == "gru":
        out, h = _GRUFunction.apply(
            gx,
            h0,
            w_hh,
            b_hh,
            ln_w,
            ln_b,
            rec_mask,
            zone_h,
            valid,
            reverse,
            layer_norm,
            w_keep,
            scale,
        )
        return out, h, None
    if family == "rnn":
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"run_direction: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        out, h = _RNNFunction.apply(
            gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask, zone_h, valid,
            nonlinearity == "relu", reverse, layer_norm, w_keep, scale,
        )  # fmt: skip
        return out, h, None
    raise ValueError(f"run_direction: family must be 'rnn', 'lstm' or 'gru', got {family!r}")
