"""sLSTM's time loop with a hand-written backward: one autograd node per direction and layer.

Autograd over a per-step loop records some twenty nodes a step and walks them back one by
one; here the forward loop keeps only what the backward needs that it cannot recompute
over all steps at once (the pre-activations and the states ``h, c, n, m``), and the
backward loop does the few operations that really depend on the step before. Everything
that is a pointwise function of saved values (gate activations, the stabilized gates, the
stabilizer's branch) is computed for all steps in one vectorized pass before the loop, and
the recurrent weight's gradient is one batched matrix multiply over all steps after it.

Layout: heads first, ``(NH, B, ...)``, so each step's block-diagonal recurrence is one
``baddbmm`` over the heads. Pre-activations per head are ``(4, d)`` in the order
``i, f, z, o``. The equations are in :mod:`rnnlab.nn.modern.slstm`; the derivative, for
``h = o c / n``, ``c = f' c_prev + i' z``, ``n = f' n_prev + i'``, ``i' = exp(i~ - m)``,
``f' = exp(a - m)``, ``a = log f + m_prev``, ``m = max(a, i~)``::

    dc += dh o / n            dn -= dh h / n            do~ = dh (c / n) o (1 - o)
    dz~ = dc i' (1 - z^2)     df' = dc c_prev + dn n_prev      di' = dc z + dn
    dm = dm_next - di' i' - df' f'
    da = df' f' + dm [a >= i~]          di~ = di' i' + dm [a < i~]
    df~ = da sigmoid(-f~) (sigmoid gate) or da (exponential gate)
    dh_prev = R^T d(pre-activations)    dc_prev = dc f'   dn_prev = dn f'   dm_prev = da

A padded step (``valid`` false) keeps the state, so its gradient passes through unchanged
and its pre-activations get none.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.nn import native

SOURCE = Path(__file__).parent.parent / "csrc" / "slstm.cpp"
LIBRARY = "rnnlab_slstm"


def native_ops() -> Any | None:
    """The native sLSTM loops (``torch.ops.rnnlab_slstm``), or ``None`` where not buildable."""
    return native.extension(LIBRARY, SOURCE)[0]


def _ops() -> Any:
    """The native ops, where :func:`use_native` said they run."""
    ops = native_ops()
    if ops is None:
        raise RuntimeError(f"rnnlab native sLSTM {native_status()}")
    return ops


def native_status() -> str:
    """One line: whether the native sLSTM loops are available, and why not if they are not."""
    ops, reason = native.extension(LIBRARY, SOURCE)
    return "available" if ops is not None else f"unavailable: {reason}"


def use_native(*tensors: Tensor) -> bool:
    """Whether the native loops run on these tensors: CPU, one float32/float64 dtype, built.

    Inside :func:`rnnlab.nn.native.python_loops` the TorchScript / Python loops run instead.
    """
    return native.tensors_fit(*tensors) and native_ops() is not None


def _forward_loop(
    pre: Tensor,
    weight: Tensor,
    state: tuple[Tensor, Tensor, Tensor, Tensor],
    valid: Tensor | None,
    exp_forget: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """States ``h, c, n, m`` of every step ``(T + 1, NH, B, d)`` and the pre-activations.

    ``pre`` ``(T, NH, B, 4d)`` (input projection and bias), ``weight`` ``(NH, d, 4d)``.
    """
    steps = pre.shape[0]
    h, c, n, m = state
    hs = pre.new_empty((steps + 1, h.shape[0], h.shape[1], h.shape[2]))
    cs, ns, ms = torch.empty_like(hs), torch.empty_like(hs), torch.empty_like(hs)
    gates = torch.empty_like(pre)  # (T, NH, B, 4d)
    hs[0] = h
    cs[0] = c
    ns[0] = n
    ms[0] = m
    size = h.shape[-1]
    for t in range(steps):
        g = torch.baddbmm(pre[t], h, weight, out=gates[t])  # (NH, B, 4d)
        i_pre, f_pre = g[..., :size], g[..., size : 2 * size]
        a = (f_pre if exp_forget else F.logsigmoid(f_pre)) + m
        # each new state is written where it is kept, not copied there afterwards
        m_new = torch.maximum(a, i_pre, out=ms[t + 1])
        i_gate = torch.exp(i_pre - m_new)
        f_gate = torch.exp(a - m_new)
        z = torch.tanh(g[..., 2 * size : 3 * size])
        c_new = torch.addcmul(f_gate * c, i_gate, z, out=cs[t + 1])
        n_new = torch.addcmul(i_gate, f_gate, n, out=ns[t + 1])
        h_new = torch.div(torch.sigmoid(g[..., 3 * size :]) * c_new, n_new, out=hs[t + 1])
        if valid is not None:  # a padded step keeps the state (in place: same element)
            keep = valid[t]  # (1, B, 1)
            h_new = torch.where(keep, h_new, h, out=h_new)
            c_new = torch.where(keep, c_new, c, out=c_new)
            n_new = torch.where(keep, n_new, n, out=n_new)
            m_new = torch.where(keep, m_new, m, out=m_new)
        h, c, n, m = h_new, c_new, n_new, m_new
    return hs, cs, ns, ms, gates


def _backward_loop(
    gates: Tensor,
    weight: Tensor,
    hs: Tensor,
    cs: Tensor,
    ns: Tensor,
    ms: Tensor,
    grad_out: Tensor,
    grad_final: list[Tensor],
    valid: Tensor | None,
    exp_forget: bool,
) -> tuple[Tensor, list[Tensor]]:
    """Gradients of the pre-activations ``(T, NH, B, 4d)`` and of the initial state."""
    steps, size = gates.shape[0], hs.shape[-1]
    i_pre, f_pre = gates[..., :size], gates[..., size : 2 * size]
    z = torch.tanh(gates[..., 2 * size : 3 * size])
    o = torch.sigmoid(gates[..., 3 * size :])
    log_f = f_pre if exp_forget else F.logsigmoid(f_pre)
    a = log_f + ms[:-1]
    m = ms[1:]
    c_prev, n_prev, c, n = cs[:-1], ns[:-1], cs[1:], ns[1:]
    i_gate = torch.exp(i_pre - m)
    f_gate = torch.exp(a - m)
    to_a = (a >= i_pre).to(gates.dtype)  # the stabilizer's branch
    to_i = 1 - to_a
    o_over_n = o / n
    h_over_n = o_over_n * c / n  # h / n
    k_o = c / n * o * (1 - o)
    k_z = i_gate * (1 - z * z)
    f_c = f_gate * c_prev  # d f'-branch: df~' f' = (dc c_prev + dn n_prev) f'
    f_n = f_gate * n_prev
    i_z = i_gate * z  # d i'-branch: di' i' = (dc z + dn) i'
    d_log_f = torch.ones_like(f_pre) if exp_forget else torch.sigmoid(-f_pre)
    if valid is not None:
        grad_out = torch.where(valid, grad_out, 0.0)
    grads = torch.empty_like(gates)
    dh, dc, dn, dm = grad_final
    weight_t = weight.transpose(1, 2)
    for t in range(steps - 1, -1, -1):
        g = grads[t]
        dh_t = dh + grad_out[t]
        dc_t = torch.addcmul(dc, dh_t, o_over_n[t])
        dn_t = torch.addcmul(dn, dh_t, h_over_n[t], value=-1.0)
        torch.mul(dh_t, k_o[t], out=g[..., 3 * size :])
        torch.mul(dc_t, k_z[t], out=g[..., 2 * size : 3 * size])
        df = torch.addcmul(dc_t * f_c[t], dn_t, f_n[t])
        di = torch.addcmul(dn_t * i_gate[t], dc_t, i_z[t])
        dm_t = dm - di - df
        da = torch.addcmul(df, dm_t, to_a[t])
        torch.addcmul(di, dm_t, to_i[t], out=g[..., :size])
        torch.mul(da, d_log_f[t], out=g[..., size : 2 * size])
        if valid is not None:
            keep = valid[t]
            g.masked_fill_(~keep, 0.0)
            dh = torch.where(keep, torch.bmm(g, weight_t), dh)
            dc = torch.where(keep, dc_t * f_gate[t], dc)
            dn = torch.where(keep, dn_t * f_gate[t], dn)
            dm = torch.where(keep, da, dm)
        else:
            dh = torch.bmm(g, weight_t)
            dc = dc_t * f_gate[t]
            dn = dn_t * f_gate[t]
            dm = da
    return grads, [dh, dc, dn, dm]


@functools.cache
def compiled_loops() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The two loops compiled by TorchScript (once, on first use), else the Python ones.

    Each loop is a long chain of small ops whose Python dispatch costs as much as the ops
    themselves; scripted, the pair ran 1.7x faster (T = 256, B = 1, H = 256, 4 heads, one
    thread: 355 ms against 596 ms). torch deprecates TorchScript (a warning, silenced
    here), so a build that cannot script them runs the same functions in Python.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(_forward_loop), torch.jit.script(_backward_loop)
    except Exception:  # any scripting failure: the Python loops compute the same
        return _forward_loop, _backward_loop


class SLSTMDirection(torch.autograd.Function):
    """One direction of one sLSTM layer over a sequence, with the backward above."""

    @staticmethod
    def forward(
        ctx: Any,
        pre: Tensor,
        weight: Tensor,
        h0: Tensor,
        c0: Tensor,
        n0: Tensor,
        m0: Tensor,
        valid: Tensor | None,
        exp_forget: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``pre`` ``(T, NH, B, 4d)``, ``weight`` ``(NH, d, 4d)``, states ``(NH, B, d)``,
        ``valid`` ``(T, 1, B, 1)`` bool or ``None`` -> outputs ``(T, NH, B, d)`` and the
        final ``h, c, n, m``."""
        ctx.native = use_native(pre, weight, h0, c0, n0, m0)
        if ctx.native:
            hs, cs, ns, ms, gates = _ops().slstm_forward(
                pre, weight, h0, c0, n0, m0, valid, exp_forget
            )
        else:
            forward_loop = compiled_loops()[0]
            hs, cs, ns, ms, gates = forward_loop(pre, weight, (h0, c0, n0, m0), valid, exp_forget)
        out = hs[1:].clone() if valid is None else torch.where(valid, hs[1:], 0.0)
        ctx.save_for_backward(gates, weight, hs, cs, ns, ms, valid)
        ctx.exp_forget = exp_forget
        return out, hs[-1].clone(), cs[-1].clone(), ns[-1].clone(), ms[-1].clone()

    @staticmethod
    def backward(
        ctx: Any,
        grad_out: Tensor | None,
        *grad_final: Tensor | None,
    ) -> tuple[Tensor | None, ...]:
        gates, weight, hs, cs, ns, ms, valid = ctx.saved_tensors
        if grad_out is None:
            grad_out = torch.zeros_like(hs[1:])
        finals = [torch.zeros_like(hs[0]) if g is None else g for g in grad_final]
        if ctx.native:
            grads, *initial = _ops().slstm_backward(
                gates, weight, hs, cs, ns, ms, grad_out, *finals, valid, ctx.exp_forget
            )
        else:
            grads, initial = compiled_loops()[1](
                gates, weight, hs, cs, ns, ms, grad_out, finals, valid, ctx.exp_forget
            )
        heads, size = weight.shape[0], weight.shape[1]
        # dR = sum over steps and batch of h_prev^T d(pre): one bmm over the heads
        h_prev = hs[:-1].permute(1, 3, 0, 2).reshape(heads, size, -1)  # (NH, d, T*B)
        d_pre = grads.transpose(0, 1).reshape(heads, -1, 4 * size)  # (NH, T*B, 4d)
        grad_weight = torch.bmm(h_prev, d_pre)
        return (grads, grad_weight, *initial, None, None)
