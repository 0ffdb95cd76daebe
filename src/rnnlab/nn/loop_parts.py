"""The pieces the Python time loops (``rnnlab.nn.loops``) are built from.

Per-step views of the ``(T, B, .)`` inputs, zoneout and lengths applied after a step
(:func:`mix`, :func:`mix_into`) and their backward (:func:`unmix`), the recurrent projection
``LN_hh(h_rec W_hh^T)`` with its layer-norm statistics kept per step (:class:`Recurrence`),
and the layer norm's forward and gradients in one ATen kernel each. Zoneout weighs the
previous value: ``state_t = zone_t * state_{t-1} + (1 - zone_t) * new_t`` (``lerp``), exact
for 0/1 weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

from rnnlab.nn.steps import LAYER_NORM_EPS


def relu_into(pre: Tensor, out: Tensor) -> Tensor:
    return torch.clamp_min(pre, 0.0, out=out)


def step_order(steps: int, reverse: bool) -> range:
    return range(steps - 1, -1, -1) if reverse else range(steps)


def at_step(mask: Tensor | None, t: int) -> Tensor | None:
    return None if mask is None else mask[t]


def zone_weights(zone: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """A zoneout mask as weights of the previous value: a bool mask becomes 0/1 in ``dtype``."""
    if zone is None or zone.dtype != torch.bool:
        return zone
    return zone.to(dtype)


def as_column(valid: Tensor | None) -> Tensor | None:
    """``(T, B)`` bool as ``(T, B, 1)``, to broadcast over the features."""
    return None if valid is None else valid.unsqueeze(-1)


def zero_past_end(valid: Tensor | None, like: Tensor) -> Tensor | None:
    """The 0-dim zero that outputs past a sequence's end take (with lengths only)."""
    return None if valid is None else like.new_zeros(())


def norm_forward(a: Tensor, norm: tuple[Tensor | None, Tensor | None]) -> tuple[Tensor, ...]:
    """Layer norm of ``a`` (B, N) returning ``(out, mean, rstd)`` in one kernel."""
    weight, bias = norm
    out, mean, rstd = torch.native_layer_norm(a, (a.shape[-1],), weight, bias, LAYER_NORM_EPS)
    return out, mean, rstd


def norm_input_grad(
    grad: Tensor, a: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor | None
) -> Tensor:
    """Gradient of layer norm with respect to its input only (one kernel)."""
    d_a, _, _ = torch.ops.aten.native_layer_norm_backward(
        grad, a, (a.shape[-1],), mean, rstd, weight, None, [True, False, False]
    )
    return cast(Tensor, d_a)


def norm_param_grads(
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


@dataclass(frozen=True)
class SavedNorm:
    """The recurrent layer norm as forward left it: inputs and statistics of every step."""

    weight: Tensor | None
    inputs: Tensor  # (T, B, N): a_t = h_rec W_hh^T
    mean: Tensor  # (T, B, 1)
    rstd: Tensor  # (T, B, 1)

    @staticmethod
    def of(
        layer_norm: bool, weight: Tensor | None, a_all: Tensor | None,
        mean_all: Tensor | None, rstd_all: Tensor | None,
    ) -> SavedNorm | None:  # fmt: skip
        if not layer_norm:
            return None
        return SavedNorm(
            weight, cast(Tensor, a_all), cast(Tensor, mean_all), cast(Tensor, rstd_all)
        )

    def input_grad(self, t: int, grad: Tensor) -> Tensor:
        return norm_input_grad(grad, self.inputs[t], self.mean[t], self.rstd[t], self.weight)

    def fill_param_grads(self, into: tuple[Tensor | None, Tensor | None], grad_all: Tensor) -> None:
        fill_norm_grads(into, grad_all, self.inputs, self.mean, self.rstd)


def through_recurrence(
    t: int, d_pre: Tensor, norm: SavedNorm | None, d_a_all: Tensor | None, w_hh: Tensor,
    rec_mask: Tensor | None,
) -> Tensor:  # fmt: skip
    """Step ``t``'s gradient reaching ``h_{t-1}`` through ``LN_hh(h_rec W_hh^T)``, from the
    gradient of that term (``d_pre``); stores the layer norm's input gradient in ``d_a_all``."""
    d_a = d_pre
    if norm is not None:
        d_a = norm.input_grad(t, d_pre)
        cast(Tensor, d_a_all)[t] = d_a
    d_rec = torch.mm(d_a, w_hh)  # (B, H_out)
    return d_rec if rec_mask is None else d_rec * rec_mask


def fill_norm_grads(
    into: tuple[Tensor | None, Tensor | None],
    grad_all: Tensor,
    a_all: Tensor,
    mean_all: Tensor,
    rstd_all: Tensor,
) -> None:
    """Layer-norm parameter gradients written into the buffers asked for."""
    grads = norm_param_grads(
        grad_all, a_all, mean_all, rstd_all, (into[0] is not None, into[1] is not None)
    )
    for buffer, grad in zip(into, grads, strict=True):
        if buffer is not None:
            buffer.copy_(cast(Tensor, grad))


def mix(new: Tensor, prev: Tensor, zone: Tensor | None, valid: Tensor | None) -> Tensor:
    """Zoneout then lengths: the state after the step. ``lerp`` weighs the previous value by
    ``zone`` in one kernel, exactly ``prev`` or ``new`` for 0/1 weights."""
    if zone is not None:
        new = torch.lerp(new, prev, zone)
    return new if valid is None else torch.where(valid, new, prev)


def mix_into(
    new: Tensor,
    prev: Tensor,
    zone: Tensor | None,
    valid: Tensor | None,
    out_t: Tensor,
    zero: Tensor | None = None,
) -> Tensor:
    """:func:`mix` for the hidden state, writing the step's output into ``out_t`` (the new
    state inside the sequence, ``zero`` past its end: a 0-dim tensor made once per call);
    returns the state."""
    if valid is None:  # output = state: computed into the output slot itself
        if zone is not None:
            return torch.lerp(new, prev, zone, out=out_t)
        if new.data_ptr() != out_t.data_ptr():
            out_t.copy_(new)
        return out_t
    if zone is not None:
        new = torch.lerp(new, prev, zone)
    torch.where(valid, new, cast(Tensor, zero), out=out_t)
    return torch.where(valid, new, prev)


def unmix(
    grad_state: Tensor,
    grad_out: Tensor | None,
    zone: Tensor | None,
    keep_new: Tensor | None,
    valid: Tensor | None,
) -> tuple[Tensor, Tensor | None]:
    """Backward of :func:`mix`: ``(grad wrt the step's new value, grad wrt prev)``, the
    latter ``None`` where it is zero (no zoneout, inside the sequence). ``keep_new`` is
    ``1 - zone``, computed once for all steps."""
    total = grad_state if grad_out is None else grad_state + grad_out
    d_prev = None
    if valid is not None:
        d_prev = torch.where(valid, 0.0, grad_state)
        total = torch.where(valid, total, 0.0)
    if zone is None:
        return total, d_prev
    through_prev = zone * total
    d_prev = through_prev if d_prev is None else d_prev + through_prev
    return cast(Tensor, keep_new) * total, d_prev


def plus(base: Tensor | None, term: Tensor) -> Tensor:
    """``base + term``, where ``None`` stands for zeros."""
    return term if base is None else base + term


def new_weights(weights: Tensor | None) -> Tensor | None:
    """``1 - zone`` for all steps at once (the new value's weight)."""
    return None if weights is None else 1.0 - weights


class Statistics:
    """Layer-norm statistics ``(B, 1)`` of every step, written into their ``(T, B, 1)``
    buffers by one ``stack`` each at the end (not two copies per step)."""

    def __init__(self, mean_all: Tensor | None, rstd_all: Tensor | None):
        self.mean_all, self.rstd_all = mean_all, rstd_all
        self.means: list[Tensor] = []
        self.rstds: list[Tensor] = []
        self.reverse = False

    def keep(self, t: int, mean: Tensor, rstd: Tensor) -> None:
        if not self.means:
            self.reverse = t != 0  # a reverse direction keeps steps from T-1 down to 0
        self.means.append(mean)
        self.rstds.append(rstd)

    def write(self) -> None:
        if self.mean_all is None or not self.means:
            return
        means, rstds = self.means, self.rstds
        if self.reverse:
            means, rstds = means[::-1], rstds[::-1]
        torch.stack(means, out=self.mean_all)
        torch.stack(rstds, out=cast(Tensor, self.rstd_all))


class Recurrence:
    """The recurrent projection ``LN_hh(h_rec W_hh^T)``, its statistics kept per step."""

    def __init__(
        self,
        w_hh: Tensor,
        norm: tuple[Tensor | None, Tensor | None] | None,
        a_all: Tensor | None,
        mean_all: Tensor | None,
        rstd_all: Tensor | None,
        gx: Tensor,  # (T, B, G*H): the steps and rows
    ):
        self.w_t = w_hh.t()
        self.norm = norm
        self.a_all = a_all
        self.statistics = Statistics(mean_all, rstd_all)
        unkept = norm is not None and a_all is None
        self.scratch = torch.empty_like(gx[0]) if unkept else None

    def project(self, t: int, h_rec: Tensor) -> Tensor:
        """``LN_hh(h_rec W_hh^T)`` for step ``t``, (B, G*H)."""
        if self.norm is None:
            return torch.mm(h_rec, self.w_t)
        into = self.scratch if self.a_all is None else self.a_all[t]
        a = torch.mm(h_rec, self.w_t, out=cast(Tensor, into))
        normed, mean, rstd = norm_forward(a, self.norm)
        self.statistics.keep(t, mean, rstd)
        return normed

    def add_to(self, t: int, base: Tensor, h_rec: Tensor) -> Tensor:
        """``base + LN_hh(h_rec W_hh^T)`` for step ``t``, (B, G*H)."""
        if self.norm is None:
            return torch.addmm(base, h_rec, self.w_t)
        return base + self.project(t, h_rec)
