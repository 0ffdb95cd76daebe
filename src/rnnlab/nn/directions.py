"""One direction of one layer: the reference time loop, and the way into the fused BPTT.

A recurrent layer runs each direction of each layer on its own (``RecurrentLayer``'s loop
over layers and directions calls one of the two functions here). The reference,
:func:`reference_direction`, runs the step equations of ``rnnlab.nn.steps`` one step at a
time under autograd; :func:`fused_direction` computes the same function through rnnlab's
fused BPTT (``rnnlab.nn.fused_bptt``, or with layer norm ``rnnlab.nn.normalized_rnn`` /
``rnnlab.nn.normalized_gru``). Both draw the direction's random masks the same way, in the
same order (:func:`draw_masks`), so under one seed they give the same numbers::

    x: (T, B, I) --one matmul--> gx: (T, B, G*H)        G = 1 (RNN), 4 (LSTM), 3 (GRU)
    for t in 0..T-1 (T-1..0 for the reverse direction):
        h_t = step(gx[t], h_{t-1} [* recurrent-dropout mask])  -> zoneout(h_{t-1}, h_t)
        where t >= length: h_t = h_{t-1}, output_t = 0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, cast

import torch
from torch import Tensor

from rnnlab.nn import fused_bptt, native, regularizers
from rnnlab.nn.input_norm import normalized_projection
from rnnlab.nn.normalized_gru import normalized_gru
from rnnlab.nn.normalized_rnn import normalized_rnn
from rnnlab.nn.steps import StepWeights, gru_step, input_projection, lstm_step, rnn_step


class DirectionLayer(Protocol):
    """What running one direction reads from a layer (``RecurrentLayer`` has it all)."""

    family: ClassVar[str]
    training: bool
    recurrent_dropout: float
    zoneout: float
    weight_drop: float


def layer_nonlinearity(layer: DirectionLayer) -> str:
    """The simple RNN's ``"tanh"`` or ``"relu"`` (``"tanh"`` for the other families)."""
    return str(getattr(layer, "nonlinearity", "tanh"))


@dataclass(frozen=True)
class DirectionMasks:
    """The random masks of one direction of one layer for one forward call.

    Attributes:
        recurrent: recurrent-dropout keep mask ``(B, H_out)`` (``0`` or ``1/(1-p)``), reused
            at every step; ``None`` when inactive.
        zone_h: zoneout on ``h``: a bool ``(T, B, H_out)`` mask in training (``True`` keeps
            the previous value), ``None`` in eval mode or when inactive.
        zone_c: the same for the LSTM cell state, ``(T, B, H)``.
    """

    recurrent: Tensor | None = None
    zone_h: Tensor | None = None
    zone_c: Tensor | None = None


def draw_masks(layer: DirectionLayer, h: Tensor, c: Tensor | None, steps: int) -> DirectionMasks:
    """Draw the masks of one direction of ``layer``: one recurrent mask, a zoneout mask per step."""
    if not layer.training:
        return DirectionMasks()
    recurrent = zone_h = zone_c = None
    if layer.recurrent_dropout > 0:
        recurrent = regularizers.keep_mask(tuple(h.shape), layer.recurrent_dropout, h)
    if layer.zoneout > 0:
        zone_h = regularizers.zoneout_mask((steps, *h.shape), layer.zoneout, h)
        if c is not None:
            zone_c = regularizers.zoneout_mask((steps, *c.shape), layer.zoneout, c)
    return DirectionMasks(recurrent, zone_h, zone_c)


def _zone(
    layer: DirectionLayer, previous: Tensor, candidate: Tensor, mask: Tensor | None
) -> Tensor:
    """Zoneout with a drawn mask (training) or its expectation (eval)."""
    if mask is not None:
        return torch.where(mask, previous, candidate)
    return regularizers.zoneout(previous, candidate, layer.zoneout, training=False)


def reference_direction(
    layer: DirectionLayer,
    x: Tensor,
    h: Tensor,
    c: Tensor | None,
    weights: StepWeights,
    reverse: bool,
    valid: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The reference: one direction of one layer, step by step under autograd.

    Returns ``(outputs (T, B, H_out), h_T, c_T)``.
    """
    steps = x.shape[0]
    gx = input_projection(x, weights)  # (T, B, G*H): all input projections in one matmul
    masks = draw_masks(layer, h, c, steps)
    mask = masks.recurrent  # (B, H_out)
    outputs: list[Tensor] = [h] * steps
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        h_rec = h if mask is None else h * mask
        c_new = None
        if layer.family == "lstm":
            h_new, c_new = lstm_step(gx[t], h_rec, cast(Tensor, c), weights)
            zone_c = None if masks.zone_c is None else masks.zone_c[t]
            c_new = _zone(layer, cast(Tensor, c), c_new, zone_c)
        elif layer.family == "gru":
            h_new = gru_step(gx[t], h, h_rec, weights)
        else:
            h_new = rnn_step(gx[t], h_rec, weights, layer_nonlinearity(layer))
        h_new = _zone(layer, h, h_new, None if masks.zone_h is None else masks.zone_h[t])
        if valid is None:
            outputs[t] = h_new
        else:
            keep = valid[t]  # (B, 1): inside the sequence
            h_new = torch.where(keep, h_new, h)
            if c_new is not None:
                c_new = torch.where(keep, c_new, cast(Tensor, c))
            outputs[t] = torch.where(keep, h_new, torch.zeros_like(h_new))
        h, c = h_new, c_new
    return torch.stack(outputs), h, c


def fused_direction(
    layer: DirectionLayer,
    x: Tensor,
    h: Tensor,
    c: Tensor | None,
    weights: StepWeights,
    reverse: bool,
    valid: Tensor | None,
    drop_connect: bool = False,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The same function as :func:`reference_direction`, through ``rnnlab.nn.fused_bptt``.

    With ``drop_connect`` the DropConnect mask of ``W_hh`` is drawn here (the same draw,
    in the same order, as ``RecurrentLayer._step_weights`` makes) and applied inside the fused
    function, which keeps no masked copy of ``W_hh``: on the native path only the mask's
    seed (:class:`rnnlab.nn.regularizers.SeededMask`), elsewhere the bool mask.
    """
    steps = x.shape[0]
    w_keep = (
        regularizers.drop_connect_keep(weights.w_hh, layer.weight_drop) if drop_connect else None
    )
    masks = draw_masks(layer, h, c, steps)
    zone_h = zone_c = None
    if masks.zone_h is not None:  # training: bool masks, True keeps the previous value
        zone_h, zone_c = masks.zone_h, masks.zone_c
    elif layer.zoneout > 0:  # eval: the expectation p * previous + (1 - p) * new
        p = torch.tensor(layer.zoneout, dtype=h.dtype, device=h.device)
        zone_h = p.expand(steps, *h.shape)
        zone_c = None if c is None else p.expand(steps, *c.shape)
    ln_ih = weights.ln_ih if torch.is_grad_enabled() else None
    # Layer norm in training: one node per direction keeping the layer norms' inputs, not
    # the activations (the simple RNN: not under eval-mode zoneout, whose outputs it
    # could not rebuild elementwise).
    if ln_ih is not None and layer.family == "gru":
        out, h_n = normalized_gru(
            x, weights.w_ih, ln_ih, h, weights.w_hh, weights.b_hh, weights.ln_hh,
            b_ih=weights.b_ih, rec_mask=masks.recurrent, zone=zone_h, valid=valid,
            reverse=reverse, w_keep=w_keep, weight_drop=layer.weight_drop,
        )  # fmt: skip
        return out, h_n, None
    zone_is_mask = zone_h is None or zone_h.dtype == torch.bool
    if ln_ih is not None and layer.family == "rnn" and zone_is_mask:
        out, h_n = normalized_rnn(
            x, weights.w_ih, ln_ih, h, weights.w_hh, weights.b_hh, weights.ln_hh,
            b_ih=weights.b_ih, rec_mask=masks.recurrent, zone=zone_h, valid=valid,
            reverse=reverse, nonlinearity=layer_nonlinearity(layer), w_keep=w_keep,
            weight_drop=layer.weight_drop,
        )  # fmt: skip
        return out, h_n, None
    if ln_ih is not None and layer.family == "rnn":  # keeps x only (not x W_ih^T)
        gain, shift = ln_ih
        gx = normalized_projection(x, weights.w_ih, gain, shift, weights.b_ih)
    elif ln_ih is not None and native.usable(x, weights.w_ih):  # the LSTM, on CPU
        gain, shift = ln_ih
        gx = normalized_projection(x, weights.w_ih, gain, shift, weights.b_ih, recompute=False)
    else:
        gx = input_projection(x, weights)  # (T, B, G*H): ordinary autograd, one matmul
    return fused_bptt.run_direction(
        layer.family,
        gx,
        h,
        c,
        weights.w_hh,
        weights.b_hh,
        ln_hh=weights.ln_hh,
        ln_c=weights.ln_c,
        w_hr=weights.w_hr,
        rec_mask=masks.recurrent,
        zone_h=zone_h,
        zone_c=zone_c,
        valid=valid,
        reverse=reverse,
        nonlinearity=layer_nonlinearity(layer),
        w_keep=w_keep,
        weight_drop=layer.weight_drop,
    )
