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
matrix multiply outside, under ordinary autograd, or with layer norm on CPU one node of
``rnnlab.nn.input_norm``); their gradient ``dgx`` goes out. (The layer-normalized simple RNN
and GRU under autograd run through ``rnnlab.nn.normalized_rnn`` and
``rnnlab.nn.normalized_gru`` instead, which wrap this module's passes with their input
projection in one node and keep the layer norms' inputs instead of activations.) The large
``(T, B, .)`` buffers are advised to use transparent huge pages (``rnnlab.nn.huge_pages``).

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

The time loops themselves run in one of two implementations with one interface: the native
C++ ops (``rnnlab.nn.native``: CPU, float32/float64) or ``rnnlab.nn.loops`` (Python, any
device; on CUDA replayed as graphs, ``rnnlab.nn.cuda_graphs``). This module allocates the
buffers, calls one of them, and keeps what backward needs.

``reverse=True`` runs ``t = T-1 .. 0``. The equations are those of ``rnnlab.nn.steps``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnlab.nn import huge_pages, loops, native
from rnnlab.nn.cuda_graphs import GraphedLoop
from rnnlab.nn.precision import full_precision_backward
from rnnlab.nn.regularizers import SeededMask, apply_drop_connect
from rnnlab.nn.steps import Norm

Grads = tuple[Tensor | None, ...]


# ------------------------------------------------------------------------------- helpers


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


def _weight_grad(d_a_all: Tensor, inputs_all: Tensor) -> Tensor:
    """``sum_t dA_t^T @ X_t`` as one matmul: ``(N, T*B) @ (T*B, K)``."""
    return torch.mm(
        d_a_all.reshape(-1, d_a_all.shape[-1]).t(), inputs_all.reshape(-1, inputs_all.shape[-1])
    )


def _sum_rows(grad_all: Tensor) -> Tensor:
    return grad_all.reshape(-1, grad_all.shape[-1]).sum(0)


def _previous_states(out: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    """``h_{t-1}`` as step ``t`` saw it, rebuilt from the outputs (exact without lengths)."""
    earlier, later, first = _shift(reverse)
    states = huge_pages.empty_like(out)
    states[later].copy_(out[earlier])
    states[first].copy_(h0)
    return states


def _shift(reverse: bool) -> tuple[slice, slice, int]:
    """``(earlier, later, first)``: ``out[earlier]`` holds ``h_{t-1}`` of the steps
    ``later`` (in the same order); step ``first`` saw ``h0``."""
    if reverse:
        return slice(1, None), slice(None, -1), -1
    return slice(None, -1), slice(1, None), 0


def _flat(tensor: Tensor) -> Tensor:
    return tensor.reshape(-1, tensor.shape[-1])


class PreviousStates:
    """``h_{t-1}`` of every step, and ``h_rec_{t-1} = h_{t-1} * rec_mask`` as ``W_hh`` saw it.

    Forward keeps ``h_{t-1}`` only with lengths (past a sequence's end the state is held and
    differs from the output); otherwise it is the outputs shifted by one step, ``h0`` first.
    Nothing is copied until asked for: :meth:`weight_grad` multiplies by the shifted outputs
    in place where there is no mask, and :meth:`inputs` builds ``h_rec`` once, in one pass
    (a concatenation then a product would be two, and a plane more). A caller that built
    ``h_rec`` itself passes it as ``h_rec``.
    """

    def __init__(
        self,
        prevs: Tensor | None,
        out: Tensor | None,
        h0: Tensor | None,
        rec_mask: Tensor | None,
        reverse: bool,
        h_rec: Tensor | None = None,
    ) -> None:
        self._prevs, self._out, self._h0 = prevs, out, h0
        self._mask, self._reverse, self._h_rec = rec_mask, reverse, h_rec

    def states(self) -> Tensor:
        """``h_{t-1}`` of all steps ``(T, B, K)``: kept, or the outputs copied once, shifted."""
        if self._prevs is None:
            self._prevs = _previous_states(cast(Tensor, self._out), cast(Tensor, self._h0),
                                           self._reverse)  # fmt: skip
        return self._prevs

    def inputs(self) -> Tensor:
        """``h_rec_{t-1}`` of all steps ``(T, B, K)``, materialized in one pass."""
        if self._h_rec is None:
            if self._mask is None:
                self._h_rec = self.states()
            elif self._prevs is not None:
                self._h_rec = huge_pages.empty_like(self._prevs)
                torch.mul(self._prevs, self._mask, out=self._h_rec)
            else:  # straight from the outputs: no copy of h_{t-1} unmasked
                out, h0 = cast(Tensor, self._out), cast(Tensor, self._h0)
                earlier, later, first = _shift(self._reverse)
                self._h_rec = huge_pages.empty_like(out)
                torch.mul(out[earlier], self._mask, out=self._h_rec[later])
                torch.mul(h0, self._mask, out=self._h_rec[first])
        return self._h_rec

    def weight_grad(self, d_a_all: Tensor) -> Tensor:
        """``dW_hh = sum_t dA_t^T h_rec_{t-1}``: one ``(N, T*B) @ (T*B, K)`` multiply, or
        two (the shifted outputs, then ``h0``) where nothing needs copying."""
        if self._h_rec is not None or self._prevs is not None or self._mask is not None:
            return _weight_grad(d_a_all, self.inputs())
        out, h0 = cast(Tensor, self._out), cast(Tensor, self._h0)
        earlier, later, first = _shift(self._reverse)
        grad = d_a_all[first].t().mm(h0)
        return grad.addmm_(_flat(d_a_all[later]).t(), _flat(out[earlier]))


def _norm_inputs(a_all: Tensor | None, previous: PreviousStates, w_hh: Tensor) -> Tensor:
    """The layer norm's inputs ``a_t = h_rec_t W_hh^T`` of all steps: kept, or recomputed."""
    return huge_pages.projection(previous.inputs(), w_hh) if a_all is None else a_all


def _dense(tensor: Tensor | None) -> Tensor | None:
    """Contiguous copy (or view) for the native loops; ``None`` stays ``None``."""
    return None if tensor is None else tensor.contiguous()


def _output_grad(d_out: Tensor) -> Tensor:
    """The outputs' gradient as the loops read it: in place where its last stride is 1 or 0.

    A loss over the outputs themselves (``out.sum()``, ``out.mean()``) hands over a gradient
    broadcast from one value (every stride 0): read where it lies instead of being copied
    into a ``(T, B, H)`` plane (26 MB at T=100, B=128, H=512), on CPU. Other layouts, and
    CUDA (whose graphed loops copy it into their own buffer), get a contiguous copy.
    """
    if d_out.device.type == "cpu" and d_out.dim() == 3 and d_out.stride(-1) in (0, 1):
        return d_out
    return huge_pages.contiguous(d_out)


def _flat_valid(valid: Tensor | None) -> Tensor | None:
    """``(T, B, 1)`` bool as the ``(T, B)`` contiguous bool the native loops read."""
    return None if valid is None else valid.reshape(valid.shape[0], valid.shape[1]).contiguous()


def _dropped(w_hh: Tensor, keep: Tensor | SeededMask | None, scale: float) -> Tensor:
    """DropConnect applied inside the fused function: ``W_hh`` where ``keep``, scaled."""
    return w_hh if keep is None else apply_drop_connect(w_hh, keep, scale)


def _undropped_grad(
    grad: Tensor | None, keep: Tensor | SeededMask | None, scale: float
) -> Tensor | None:
    """The gradient of the raw ``W_hh`` from that of the masked one (the same map)."""
    return grad if grad is None or keep is None else apply_drop_connect(grad, keep, scale)


def _norm_buffers(
    gx: Tensor, layer_norm: bool, keep_inputs: bool
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(a_all, mean_all, rstd_all)`` of the recurrent layer norm, or ``None`` each.

    With ``keep_inputs=False`` the layer norm's inputs ``a_t = h_rec W_hh^T`` are not kept:
    backward recomputes all of them in one matrix multiply (:func:`_norm_inputs`), which
    saves a ``(T, B, G*H)`` buffer for a few percent more time.
    """
    if not layer_norm:
        return None, None, None
    steps, batch, _ = gx.shape
    a_all = huge_pages.empty_like(gx) if keep_inputs else None
    return a_all, gx.new_empty(steps, batch, 1), gx.new_empty(steps, batch, 1)


_PYTHON_LOOPS = SimpleNamespace(
    **{name: GraphedLoop(getattr(loops, name), writes) for name, writes in loops.WRITES.items()}
)


def time_loops(use_native: bool) -> Any:
    """The time loops: native C++ ops, or the Python ones (graphed on CUDA): one interface."""
    return native.ops() if use_native else _PYTHON_LOOPS


# ------------------------------------------------------------------------------- simple RNN


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
    w_raw, w_hh = w_hh, _dropped(w_hh, w_keep, w_scale)  # keeps the mask (or seed) only
    ctx.w_scale = w_scale
    ctx.flags = flags
    steps = gx.shape[0]
    norm = _norm_buffers(gx, layer_norm, keep_inputs=keep_norm_inputs)
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
        gx.contiguous(), h0, w_hh, b_hh, ln_w, ln_b, rec_mask, _dense(zone),
        _flat_valid(valid), relu, reverse, layer_norm, out, acts, prevs, *norm,
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
    w_hh = _dropped(w_hh, keep, ctx.w_scale)  # the masked W_hh forward used
    relu, reverse, layer_norm = ctx.flags
    previous = PreviousStates(prevs, out, h0, rec_mask, reverse, h_rec_all)
    if layer_norm:
        a_all = _norm_inputs(a_all, previous, w_hh)
    d_pre_all = huge_pages.empty_like(acts)  # (T, B, H): grad of the pre-activation (= dgx)
    d_a_all = huge_pages.empty_like(acts) if layer_norm else d_pre_all  # grad of h_rec W^T
    d_ln_w, d_ln_b = _norm_grad_buffers(acts, acts.shape[-1], layer_norm, needs[4:6])
    grad = time_loops(ctx.native).rnn_backward(
        _output_grad(d_out), d_h, w_hh, ln_w, rec_mask, _dense(zone), _flat_valid(valid),
        acts, a_all, mean_all, rstd_all, relu, reverse, layer_norm, d_pre_all,
        d_a_all if layer_norm else None, d_ln_w, d_ln_b,
    )  # fmt: skip
    return (
        d_pre_all if needs[0] else None,
        grad if needs[1] else None,
        _undropped_grad(previous.weight_grad(d_a_all) if needs[2] else None, keep, ctx.w_scale),
        _sum_rows(d_pre_all) if needs[3] else None,
        d_ln_w,
        d_ln_b,
    )


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
        w_raw, w_hh = w_hh, _dropped(w_hh, w_keep, w_scale)  # keeps the mask (or seed) only
        stored_keep = None if ctx.w_seeded is not None else w_keep
        ctx.w_scale = w_scale
        steps, batch, width = gx.shape
        hidden = width // 4
        norm_saved = _norm_buffers(gx, layer_norm, keep_inputs=True)
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
            _dense(zone_h), _dense(zone_c), _flat_valid(valid), reverse, layer_norm, out,
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
        w_hh = _dropped(w_hh, w_keep, ctx.w_scale)  # the masked W_hh forward used
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
        d_ln = _norm_grad_buffers(gates, 4 * hidden, layer_norm, needs[5:7])
        d_lnc = _norm_grad_buffers(gates, hidden, layer_norm, needs[7:9])
        grad_h, grad_c = time_loops(ctx.native).lstm_backward(
            _output_grad(d_out), d_h, d_c, w_hh, ln_w, lnc_w, w_hr, rec_mask,
            _dense(zone_h), _dense(zone_c), _flat_valid(valid), gates, tanh_c, c_prevs,
            c_new_all, c_mean, c_rstd, a_all, mean_all, rstd_all, reverse, layer_norm, d_pre_all,
            d_a_all if layer_norm else None, d_lnc_all, d_hnew_all, *d_ln, *d_lnc,
        )  # fmt: skip
        d_w_hr = None
        if w_hr is not None and needs[9]:
            out_gate = gates[..., 3 * hidden :]  # o, (T, B, H)
            d_w_hr = _weight_grad(cast(Tensor, d_hnew_all), out_gate * tanh_c)
        return (
            d_pre_all if needs[0] else None,
            grad_h if needs[1] else None,
            grad_c if needs[2] else None,
            _undropped_grad(
                previous.weight_grad(d_a_all) if needs[3] else None, w_keep, ctx.w_scale
            ),
            _sum_rows(d_pre_all) if needs[4] else None,
            *d_ln,
            *d_lnc,
            d_w_hr,
            *([None] * 8),
        )


# ------------------------------------------------------------------------------- GRU


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
    w_raw, w_hh = w_hh, _dropped(w_hh, w_keep, w_scale)  # keeps the mask (or seed) only
    ctx.w_scale = w_scale
    ctx.flags = flags
    reverse, layer_norm = flags
    steps, batch, width = gx.shape
    hidden = width // 3
    norm = _norm_buffers(gx, layer_norm, keep_inputs=keep_norm_inputs)
    out = huge_pages.new_empty(gx, steps, *h0.shape)  # (T, B, H)
    rz_all = huge_pages.new_empty(gx, steps, batch, 2 * hidden)  # r, z
    n_all = huge_pages.new_empty(gx, steps, batch, hidden)
    hn_all = huge_pages.empty_like(n_all)  # LN(a_n) + b_hn: what r multiplies
    prevs = huge_pages.empty_like(n_all) if valid is not None else None  # lengths only
    ctx.native = native.usable(gx, h0, w_hh, b_hh, ln_w, ln_b, rec_mask)
    h = time_loops(ctx.native).gru_forward(
        gx.contiguous(), h0, w_hh, b_hh, ln_w, ln_b, rec_mask, _dense(zone),
        _flat_valid(valid), reverse, layer_norm, out, rz_all, n_all, hn_all, prevs, *norm,
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
    w_hh = _dropped(w_hh, keep, ctx.w_scale)  # the masked W_hh forward used
    reverse, layer_norm = ctx.flags
    previous = PreviousStates(prevs, out, h0, rec_mask, reverse)
    if layer_norm:
        a_all = _norm_inputs(a_all, previous, w_hh)
    d_gx_all = huge_pages.new_empty(hn_all, *hn_all.shape[:2], 3 * hn_all.shape[2])  # (T, B, 3H)
    d_gh_all = huge_pages.empty_like(d_gx_all)  # grad of LN(a) + b_hh
    d_a_all = huge_pages.empty_like(d_gx_all) if layer_norm else d_gh_all
    d_ln = _norm_grad_buffers(d_gx_all, d_gx_all.shape[-1], layer_norm, needs[4:6])
    grad = time_loops(ctx.native).gru_backward(
        _output_grad(d_out), d_h, w_hh, ln_w, rec_mask, _dense(zone), _flat_valid(valid),
        rz_all, n_all, hn_all, previous.states(), a_all, mean_all, rstd_all, reverse, layer_norm,
        d_gx_all, d_gh_all, d_a_all if layer_norm else None, *d_ln,
    )  # fmt: skip
    return (
        d_gx_all if needs[0] else None,
        grad if needs[1] else None,
        _undropped_grad(previous.weight_grad(d_a_all) if needs[2] else None, keep, ctx.w_scale),
        _sum_rows(d_gh_all) if needs[3] else None,
        *d_ln,
    )


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
