"""One time step of each cell family, written once and shared by cells and layers.

Each function takes the input projection ``gx = LN_ih(x W_ih^T) + b_ih`` already computed
(the layers compute it for all time steps in one matrix multiply), the previous state,
and ``h_rec``: the previous hidden state as it feeds the recurrence (equal to ``h`` unless
recurrent dropout masks it). Gate order and equations follow ``torch.nn``:

- simple RNN:  ``h' = act(gx + LN_hh(h_rec W_hh^T) + b_hh)``
- LSTM (``i, f, g, o``)::

      [i, f, g, o] = gx + LN_hh(h_rec W_hh^T) + b_hh
      c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
      h' = sigmoid(o) * tanh(LN_c(c'))            (then h' = h' W_hr^T with a projection)

- GRU (``r, z, n``; the reset gate acts after the matrix multiply, as in torch and cuDNN)::

      [a_r, a_z, a_n] = LN_hh(h_rec W_hh^T) + b_hh
      r = sigmoid(gx_r + a_r);  z = sigmoid(gx_z + a_z)
      n = tanh(gx_n + r * a_n)
      h' = (1 - z) * n + z * h

``LN`` is layer normalization (Ba et al. 2016) over the whole gate vector, with its own gain
and bias; it is skipped when its parameters are ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

LAYER_NORM_EPS = 1e-5

Norm = tuple[Tensor, Tensor] | None


@dataclass(frozen=True)
class StepWeights:
    """The weights one direction of one layer uses at every step.

    ``w_hh`` may be a DropConnect-masked copy of the stored parameter.
    """

    w_ih: Tensor
    w_hh: Tensor
    b_ih: Tensor | None = None
    b_hh: Tensor | None = None
    w_hr: Tensor | None = None
    ln_ih: Norm = None
    ln_hh: Norm = None
    ln_c: Norm = None


def normalize(x: Tensor, norm: Norm) -> Tensor:
    """Layer-normalize ``x`` over its last dimension with gain and bias ``norm``."""
    if norm is None:
        return x
    weight, bias = norm
    return F.layer_norm(x, (x.shape[-1],), weight, bias, LAYER_NORM_EPS)


def input_projection(x: Tensor, w: StepWeights) -> Tensor:
    """``LN_ih(x W_ih^T) + b_ih`` for any number of leading dimensions."""
    if w.ln_ih is None and w.b_ih is not None:  # bias added inside the matrix multiply
        flat = torch.addmm(w.b_ih, x.reshape(-1, x.shape[-1]), w.w_ih.t())
        return flat.view(*x.shape[:-1], flat.shape[-1])
    a = torch.matmul(x, w.w_ih.t())
    if w.ln_ih is not None and w.b_ih is not None:
        # LN(a; g, beta) + b = LN(a; g, beta + b): one pass over (..., G*H), not two.
        gain, shift = w.ln_ih
        return normalize(a, (gain, shift + w.b_ih))
    gx = normalize(a, w.ln_ih)
    return gx if w.b_ih is None else gx + w.b_ih


def _recurrent_projection(h_rec: Tensor, w: StepWeights) -> Tensor:
    gh = normalize(torch.matmul(h_rec, w.w_hh.t()), w.ln_hh)
    if w.b_hh is not None:
        gh = gh + w.b_hh
    return gh


def rnn_step(gx: Tensor, h_rec: Tensor, w: StepWeights, nonlinearity: str) -> Tensor:
    """One step of the simple (Elman) RNN; returns ``h'`` of shape ``(B, H)``."""
    pre = gx + _recurrent_projection(h_rec, w)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_step(gx: Tensor, h_rec: Tensor, c: Tensor, w: StepWeights) -> tuple[Tensor, Tensor]:
    """One LSTM step; returns ``(h', c')`` with ``h'`` projected when ``w.w_hr`` is set."""
    gates = gx + _recurrent_projection(h_rec, w)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
    h_new = torch.sigmoid(o) * torch.tanh(normalize(c_new, w.ln_c))  # (B, H)
    if w.w_hr is not None:
        h_new = torch.matmul(h_new, w.w_hr.t())  # (B, P)
    return h_new, c_new


def gru_step(gx: Tensor, h: Tensor, h_rec: Tensor, w: StepWeights) -> Tensor:
    """One GRU step; ``h`` is the previous state, ``h_rec`` the same as fed to ``W_hh``."""
    gh = _recurrent_projection(h_rec, w)  # (B, 3H)
    x_r, x_z, x_n = gx.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1.0 - z) * n + z * h
