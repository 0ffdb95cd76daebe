"""The element-wise scans of the modern cells: ``h_t = a_t * h_{t-1} + b_t`` over time, fast.

Three autograd Functions, each one node per direction and layer, each with two
implementations that compute the same function:

- the native one (``csrc/scan.cpp``, built on first use by :func:`rnnlab.nn.native.extension`)
  for CPU float32/float64: one time loop per (batch row, column block) task, threads split
  by tasks with ``at::parallel_for``, the columns vectorized, the gates computed inside the
  loop from the projection's pre-activations (forward reads the projection once and writes
  the output once; backward recomputes the gates instead of storing them);
- a pure PyTorch one (GPUs, other dtypes, no compiler, ``RNNLAB_NATIVE=0``, or inside
  :func:`rnnlab.nn.native.python_loops`): the gates by torch ops, the time loop in Python.

:class:`LinearScan` takes ``a`` and ``b``; :class:`GatedScan` takes the pre-activations of
minGRU (``[p_z, p_h]``) or minLSTM (``[p_f, p_i, p_h]``); :class:`IndRNNScan` takes
``p = W x + b`` and the recurrent weight ``u`` (``h_t = act(p_t + u * h_{t-1})``).

Backward is the same scan reversed in time. With ``c_t = dL/dh_t`` (all paths)::

    c_t = dout_t + a_{t+1} c_{t+1}      (c_{T-1} = dout_{T-1} + dh_n)
    da_t = c_t h_{t-1},  db_t = c_t,  dh_0 = a_0 c_0

Lengths: past a sequence's length the state is frozen and the output zero; ``reverse`` runs
each sequence from its own last step down to 0.

Example:
    >>> import torch
    >>> a, b = torch.rand(5, 2, 3), torch.randn(5, 2, 3)
    >>> out, h_n = linear_scan(a, b, torch.zeros(2, 3))
    >>> bool(torch.allclose(out[1], a[1] * out[0] + b[1]))
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.nn import native

SOURCE = Path(__file__).parent.parent / "csrc" / "scan.cpp"
LIBRARY = "rnnlab_scan"
KINDS = {"mingru": 0, "minlstm": 1}
"""Gated cells of :class:`GatedScan` and their number in ``csrc/scan.cpp``."""
BLOCKS = {"mingru": 2, "minlstm": 3}
"""Pre-activation blocks of ``hidden_size`` each, per gated cell."""


def native_ops() -> Any | None:
    """The native scan ops (``torch.ops.rnnlab_scan``), or ``None`` where they cannot be built."""
    return native.extension(LIBRARY, SOURCE)[0]


def _ops() -> Any:
    """The native ops, where :func:`use_native` said they run."""
    ops = native_ops()
    if ops is None:
        raise RuntimeError(f"rnnlab native scan {native_status()}")
    return ops


def native_status() -> str:
    """One line: whether the native scans are available, and why not if they are not."""
    ops, reason = native.extension(LIBRARY, SOURCE)
    if ops is None:
        return f"unavailable: {reason}"
    return f"available (split between {ops.parallel_threads()} threads)"


def use_native(*tensors: Tensor) -> bool:
    """Whether the native scans run on these tensors: CPU, one float32/float64 dtype, built."""
    return native.tensors_fit(*tensors) and native_ops() is not None


# ----------------------------------------------------------------------------- gates


def g(x: Tensor) -> Tensor:
    """Feng et al.'s positive activation: ``x + 1/2`` for ``x >= 0``, ``sigmoid(x)`` below."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def coefficients(kind: str, pre: Tensor) -> tuple[Tensor, Tensor]:
    """``a, b`` of ``h_t = a h_{t-1} + b`` from a gated cell's pre-activations ``(..., K H)``.

    minGRU: ``a = 1 - z``, ``b = z g(p_h)``, ``z = sigmoid(p_z)``. minLSTM: ``a = f'``,
    ``b = (1 - f') g(p_h)``, ``f' = f / (f + i) = sigmoid(log f - log i)`` (computed through
    ``logsigmoid``: no 0 / 0 when both gates underflow).
    """
    if kind == "mingru":
        p_z, p_h = pre.chunk(2, dim=-1)
        z = torch.sigmoid(p_z)
        return 1 - z, z * g(p_h)
    p_f, p_i, p_h = pre.chunk(3, dim=-1)
    f_norm = torch.sigmoid(F.logsigmoid(p_f) - F.logsigmoid(p_i))
    return f_norm, (1 - f_norm) * g(p_h)


def indrnn_step(pre: Tensor, u: Tensor, h: Tensor, relu: bool) -> Tensor:
    """One IndRNN step ``act(p + u * h)`` in torch ops (the sequential and fallback form)."""
    a = pre + u * h
    return torch.relu(a) if relu else torch.tanh(a)


# ----------------------------------------------------------------------------- helpers


def _valid(lengths: Tensor | None, steps: int, like: Tensor) -> Tensor | None:
    """``(T, B, 1)`` bool, true at the steps inside each sequence."""
    if lengths is None:
        return None
    time = torch.arange(steps).unsqueeze(1)  # (T, 1)
    return (time < lengths.unsqueeze(0)).unsqueeze(-1).to(like.device)


def _empty_output(steps: int, batch: int, size: int, like: Tensor, batch_first: bool) -> Tensor:
    """A ``(T, B, N)`` view over memory laid out ``(B, T, N)`` when ``batch_first``."""
    if batch_first:
        return like.new_empty(batch, steps, size).transpose(0, 1)
    return like.new_empty(steps, batch, size)


def _unit_last(x: Tensor) -> Tensor:
    """``x`` with a contiguous last dimension (a gradient may arrive expanded, stride 0).

    A gradient expanded from one value (the backward of ``out.sum()``) becomes one
    materialized row expanded over time and batch (strides ``(0, 0, 1)``, which the
    native kernels read as they are), not a full ``(T, B, N)`` copy.
    """
    if x.stride(-1) == 1:
        return x
    if x.dim() == 3 and x.stride(0) == 0 and x.stride(1) == 0:
        return x[:1, :1].contiguous().expand_as(x)
    return x.contiguous()


def _order(steps: int, reverse: bool) -> range:
    return range(steps - 1, -1, -1) if reverse else range(steps)


def _python_forward(
    a: Tensor, b: Tensor, h0: Tensor, valid: Tensor | None, reverse: bool, out: Tensor
) -> Tensor:
    h = h0
    for t in _order(a.shape[0], reverse):
        new = torch.addcmul(b[t], a[t], h)
        h = new if valid is None else torch.where(valid[t], new, h)
        out[t] = h if valid is None else h * valid[t]
    return h


def _previous(out: Tensor, h0: Tensor, t: int, reverse: bool, valid: Tensor | None) -> Tensor:
    """``h_{t-1}`` in processing order: the output of the step before, or ``h0``."""
    t_prev = t + 1 if reverse else t - 1
    if t_prev < 0 or t_prev >= out.shape[0]:
        return h0
    if valid is None:
        return out[t_prev]
    return torch.where(valid[t_prev], out[t_prev], h0)  # a padded step before: the state is h0


def _python_backward(
    d_out: Tensor,
    d_hn: Tensor,
    a: Tensor,
    out: Tensor,
    h0: Tensor,
    valid: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    d_a, d_b = torch.zeros_like(a), torch.zeros_like(a)
    c = d_hn
    for t in reversed(_order(a.shape[0], reverse)):
        hp = _previous(out, h0, t, reverse, valid)
        total = c + d_out[t]
        if valid is None:
            d_a[t], d_b[t], c = total * hp, total, total * a[t]
        else:
            d_a[t] = torch.where(valid[t], total * hp, 0)
            d_b[t] = torch.where(valid[t], total, 0)
            c = torch.where(valid[t], total * a[t], c)
    return d_a, d_b, c


# ----------------------------------------------------------------------------- functions


class LinearScan(torch.autograd.Function):
    """``out, h_n`` of ``h_t = a_t h_{t-1} + b_t``; ``a, b`` ``(T, B, N)``, ``h0`` ``(B, N)``."""

    @staticmethod
    def forward(
        ctx: Any, a: Tensor, b: Tensor, h0: Tensor, lengths: Tensor | None, reverse: bool
    ) -> tuple[Tensor, Tensor]:
        steps, batch, size = a.shape
        out = a.new_empty(steps, batch, size)
        h0 = h0.contiguous()
        ctx.native = use_native(a, b, h0)
        if ctx.native:
            h_n = _ops().linear_scan(_unit_last(a), _unit_last(b), h0, lengths, reverse, out)
        else:
            h_n = _python_forward(a, b, h0, _valid(lengths, steps, a), reverse, out)
        ctx.save_for_backward(a, out, h0)
        ctx.lengths, ctx.reverse = lengths, reverse
        return out, h_n

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, d_hn: Tensor) -> tuple[Tensor | None, ...]:
        a, out, h0 = ctx.saved_tensors
        if ctx.native:
            d_a, d_b = torch.empty_like(out), torch.empty_like(out)
            d_h0 = _ops().linear_scan_backward(
                _unit_last(d_out),
                d_hn.contiguous(),
                _unit_last(a),
                out,
                h0,
                ctx.lengths,
                ctx.reverse,
                d_a,
                d_b,
            )
        else:
            valid = _valid(ctx.lengths, a.shape[0], a)
            d_a, d_b, d_h0 = _python_backward(d_out, d_hn, a, out, h0, valid, ctx.reverse)
        return d_a, d_b, d_h0, None, None


class GatedScan(torch.autograd.Function):
    """minGRU / minLSTM over time from the pre-activations ``(T, B, K N)``, fused (native).

    The output is a ``(T, B, N)`` view, laid out ``(B, T, N)`` in memory when
    ``batch_first`` (so the next layer's projection reads it without a copy).
    """

    @staticmethod
    def forward(
        ctx: Any,
        kind: str,
        pre: Tensor,
        h0: Tensor,
        lengths: Tensor | None,
        reverse: bool,
        batch_first: bool,
    ) -> tuple[Tensor, Tensor]:
        steps, batch = pre.shape[0], pre.shape[1]
        pre, h0 = _unit_last(pre), h0.contiguous()
        out = _empty_output(steps, batch, h0.shape[1], pre, batch_first)
        h_n = _ops().gated_scan(KINDS[kind], pre, h0, lengths, reverse, out)
        ctx.save_for_backward(pre, out, h0)
        ctx.kind, ctx.lengths, ctx.reverse = kind, lengths, reverse
        return out, h_n

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, d_hn: Tensor) -> tuple[Tensor | None, ...]:
        pre, out, h0 = ctx.saved_tensors
        d_pre = torch.empty_like(pre)  # same strides as pre: the projection's own layout
        d_h0 = _ops().gated_scan_backward(
            KINDS[ctx.kind],
            _unit_last(d_out),
            d_hn.contiguous(),
            pre,
            out,
            h0,
            ctx.lengths,
            ctx.reverse,
            d_pre,
        )
        return None, d_pre, d_h0, None, None, None


class IndRNNScan(torch.autograd.Function):
    """IndRNN over time, ``h_t = act(p_t + u h_{t-1})``, fused (native); saves only ``h``."""

    @staticmethod
    def forward(
        ctx: Any,
        pre: Tensor,
        u: Tensor,
        h0: Tensor,
        lengths: Tensor | None,
        reverse: bool,
        relu: bool,
        batch_first: bool,
    ) -> tuple[Tensor, Tensor]:
        steps, batch = pre.shape[0], pre.shape[1]
        pre, u, h0 = _unit_last(pre), u.contiguous(), h0.contiguous()
        out = _empty_output(steps, batch, h0.shape[1], pre, batch_first)
        h_n = _ops().indrnn_scan(pre, u, h0, lengths, reverse, relu, out)
        ctx.save_for_backward(u, out, h0)
        ctx.lengths, ctx.reverse, ctx.relu = lengths, reverse, relu
        ctx.pre_like = (pre.shape, pre.stride())
        return out, h_n

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, d_hn: Tensor) -> tuple[Tensor | None, ...]:
        u, out, h0 = ctx.saved_tensors
        shape, stride = ctx.pre_like
        d_pre = torch.empty_strided(shape, stride, dtype=out.dtype, device=out.device)
        d_h0, d_u = _ops().indrnn_scan_backward(
            _unit_last(d_out),
            d_hn.contiguous(),
            u,
            out,
            h0,
            ctx.lengths,
            ctx.reverse,
            ctx.relu,
            d_pre,
        )
        return d_pre, d_u, d_h0, None, None, None, None


# ----------------------------------------------------------------------------- entry points


def linear_scan(
    a: Tensor, b: Tensor, h0: Tensor, lengths: Tensor | None = None, reverse: bool = False
) -> tuple[Tensor, Tensor]:
    """``out (T, B, N), h_n (B, N)`` of ``h_t = a_t h_{t-1} + b_t`` (native or Python).

    Args:
        a, b: ``(T, B, N)`` coefficients.
        h0: ``(B, N)`` initial state.
        lengths: int64 ``(B,)`` on the CPU, each in ``[1, T]``; ``None``: all ``T``.
        reverse: run from each sequence's last step down to step 0.
    """
    out, h_n = LinearScan.apply(a, b, h0, lengths, reverse)
    return out, h_n


def gated_scan(
    kind: str,
    pre: Tensor,
    h0: Tensor,
    lengths: Tensor | None = None,
    reverse: bool = False,
    batch_first: bool = False,
) -> tuple[Tensor, Tensor]:
    """minGRU (``kind="mingru"``) or minLSTM over time from ``pre (T, B, K N)``.

    The native path fuses gates and scan; the fallback builds ``a, b`` with
    :func:`coefficients` (autograd) and runs :class:`LinearScan`.
    """
    if use_native(pre, h0):
        out, h_n = GatedScan.apply(kind, pre, h0, lengths, reverse, batch_first)
        return out, h_n
    a, b = coefficients(kind, pre)
    return linear_scan(a, b, h0, lengths, reverse)


def indrnn_scan(
    pre: Tensor,
    u: Tensor,
    h0: Tensor,
    relu: bool,
    lengths: Tensor | None = None,
    reverse: bool = False,
    batch_first: bool = False,
) -> tuple[Tensor, Tensor]:
    """IndRNN over time from ``pre (T, B, N)`` and ``u (N)``: fused (native) or a Python loop."""
    if use_native(pre, u, h0):
        out, h_n = IndRNNScan.apply(pre, u, h0, lengths, reverse, relu, batch_first)
        return out, h_n
    valid = _valid(lengths, pre.shape[0], pre)
    outputs: list[Tensor] = [pre.new_empty(0)] * pre.shape[0]
    h = h0
    for t in _order(pre.shape[0], reverse):
        new = indrnn_step(pre[t], u, h, relu)
        h = new if valid is None else torch.where(valid[t], new, h)
        outputs[t] = h if valid is None else h * valid[t]
    return torch.stack(outputs), h
