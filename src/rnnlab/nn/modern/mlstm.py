"""mLSTM (Beck et al. 2024, "xLSTM"): a matrix memory per head, trained in parallel.

Per head (``num_heads`` heads of ``d = H / num_heads`` units), from the input alone::

    q_t = W_q x_t + b_q,  k_t = (W_k x_t + b_k) / sqrt(d),  v_t = W_v x_t + b_v
    i~_t = w_i . x_t + b_i,  f~_t = w_f . x_t + b_f        (one scalar each per head)
    o_t = sigmoid(W_o x_t + b_o)
    log f_t = log sigmoid(f~_t)  or  f~_t                   (forget_gate="sigmoid" | "exp")
    m_t  = max(log f_t + m_{t-1}, i~_t)                     stabilizer
    i'_t = exp(i~_t - m_t),  f'_t = exp(log f_t + m_{t-1} - m_t)
    C_t  = f'_t C_{t-1} + i'_t v_t k_t^T                    matrix memory (d x d)
    n_t  = f'_t n_{t-1} + i'_t k_t                          normalizer
    h_t  = o_t * C_t q_t / max(|n_t . q_t|, exp(-m_t))

The gates do not depend on ``h_{t-1}``, so the whole sequence can be computed at once as a
decay-masked attention (``rnnlab.nn.modern.mlstm_forms``): ``form="parallel"`` (the
default, for training) runs it in chunks of ``chunk_size`` steps (``None``: the whole
sequence as one ``T x T`` block), ``form="recurrent"`` runs the steps one by one (what
``step()`` does for streaming). Both give the same outputs, final state and gradients.

The state is ``(h, C, n, m)``: ``h`` ``(L * D, B, H)``, the last output (it does not enter
the next step, mLSTM having no recurrent ``h``; it is there so that ``state[0]`` is
``h_n`` as for every rnnlab layer), ``C`` ``(L * D, B, num_heads, d, d)``, ``n``
``(L * D, B, num_heads, d)``, ``m`` ``(L * D, B, num_heads)``; zeros when omitted.
Parameters per layer and direction (suffix ``_l{k}``, ``_l{k}_reverse``): ``weight_ih``
``(4H + 2 num_heads, I)``, rows ``q, k, v, o`` (``H`` each) then ``i, f`` (``num_heads``
each), and ``bias`` of the same rows. Weights start uniform in ``+-1/sqrt(H)``, the
forget-gate bias evenly spaced in ``[3, 6]`` over the heads (0 for the exponential gate),
the other biases at 0.

Example:
    >>> import torch
    >>> layer = MLSTM(3, 8, num_heads=2, batch_first=True)
    >>> out, (h, c, n, m) = layer(torch.randn(2, 5, 3))
    >>> tuple(out.shape), tuple(c.shape), tuple(m.shape)
    ((2, 5, 8), (1, 2, 2, 4, 4), (1, 2, 2))
    >>> y, state = layer.step(torch.randn(2, 3))  # one step, for streaming
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.nn import validation
from rnnlab.nn.modern.mlstm_forms import (
    MState,
    parallel_sequence,
    recurrent_sequence,
    recurrent_step,
)
from rnnlab.nn.modern.xlstm_parts import XLSTMLayer, XState, forget_bias_init

FORMS = ("parallel", "recurrent")
FORGET_GATES = ("sigmoid", "exp")


def project(
    x: Tensor, weight: Tensor, bias: Tensor | None, heads: int, exp_forget: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``q, k, v, o`` ``(..., NH, d)`` and ``i~, log f`` ``(..., NH)`` of ``x`` ``(..., I)``."""
    hidden = (weight.shape[0] - 2 * heads) // 4
    size = hidden // heads
    proj = F.linear(x, weight, bias)
    qkvo, gates = proj[..., : 4 * hidden], proj[..., 4 * hidden :]
    q, k, v, o_pre = (part.unflatten(-1, (heads, size)) for part in qkvo.chunk(4, dim=-1))
    i_pre, f_pre = gates[..., :heads], gates[..., heads:]
    log_f = f_pre if exp_forget else F.logsigmoid(f_pre)
    return q, k / math.sqrt(size), v, torch.sigmoid(o_pre), i_pre, log_f


def _init_weights(
    hidden: int, heads: int, weight: Tensor, bias: Tensor | None, exp_forget: bool
) -> None:
    bound = hidden**-0.5
    with torch.no_grad():
        weight.uniform_(-bound, bound)
        if bias is not None:
            bias.zero_()
            bias[4 * hidden + heads :] = forget_bias_init(heads, exp_forget).to(bias)


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


class MLSTMCell(nn.Module):
    """One recurrent mLSTM step (equations in the module docstring).

    ``cell(x_t, state)`` with ``x_t`` ``(B, I)`` returns ``(h_t, (h_t, C, n, m))``, the
    state without the layer's leading ``L * D`` dimension (``h`` does not enter the step).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        num_heads: int = 1,
        forget_gate: str = "sigmoid",
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        validation.check_size("input_size", input_size)
        validation.check_size("hidden_size", hidden_size)
        validation.check_size("num_heads", num_heads)
        _check_choice("forget_gate", forget_gate, FORGET_GATES)
        if hidden_size % num_heads:
            raise ValueError(
                f"hidden_size={hidden_size} must be a multiple of num_heads={num_heads}"
            )
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.num_heads = input_size, hidden_size, num_heads
        self.forget_gate = forget_gate
        rows = 4 * hidden_size + 2 * num_heads
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.bias = nn.Parameter(torch.empty(rows, **factory)) if bias else None
        _init_weights(hidden_size, num_heads, self.weight_ih, self.bias, forget_gate == "exp")

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> XState:
        """Zeros ``(h, C, n, m)``: ``(B, H)``, ``(B, NH, d, d)``, ``(B, NH, d)``, ``(B, NH)``."""
        like = self.weight_ih
        size = self.hidden_size // self.num_heads
        factory: dict[str, Any] = {"device": device or like.device, "dtype": dtype or like.dtype}
        heads = self.num_heads
        return (
            torch.zeros(batch, self.hidden_size, **factory),
            torch.zeros(batch, heads, size, size, **factory),
            torch.zeros(batch, heads, size, **factory),
            torch.zeros(batch, heads, **factory),
        )

    def forward(self, x: Tensor, state: XState | None = None) -> tuple[Tensor, XState]:
        validation.check_input("MLSTMCell", x, self.input_size, (2,))
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        q, k, v, o, i_pre, log_f = project(
            x, self.weight_ih, self.bias, self.num_heads, self.forget_gate == "exp"
        )
        h, new = recurrent_step(q, k, v, i_pre, log_f, (state[1], state[2], state[3]))
        out = (o * h).flatten(-2)
        return out, (out, *new)


class MLSTM(XLSTMLayer):
    """Stacked, optionally bidirectional mLSTM layer (equations in the module docstring).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: as
            ``torch.nn.LSTM``.
        num_heads: heads, each with its own ``d x d`` memory (``hidden_size`` a multiple).
        forget_gate: ``"sigmoid"`` (default) or ``"exp"``.
        form: ``"parallel"`` (default, training) or ``"recurrent"``; both give the same
            numbers, settable any time (``layer.form = "recurrent"``).
        chunk_size: steps per chunk of the parallel form (``None``: one ``T x T`` block).
    """

    state_names = ("h", "C", "n", "m")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        num_heads: int = 1,
        forget_gate: str = "sigmoid",
        form: str = "parallel",
        chunk_size: int | None = 64,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            num_heads,
        )
        _check_choice("forget_gate", forget_gate, FORGET_GATES)
        _check_choice("form", form, FORMS)
        if chunk_size is not None:
            validation.check_size("chunk_size", chunk_size)
        self.forget_gate, self.form, self.chunk_size = forget_gate, form, chunk_size
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        rows = 4 * hidden_size + 2 * num_heads
        for suffix in self._suffixes():
            inputs = self._layer_input_size(int(suffix[2:].split("_")[0]))
            self.register_parameter(
                f"weight_ih{suffix}", nn.Parameter(torch.empty(rows, inputs, **factory))
            )
            bias_param = nn.Parameter(torch.empty(rows, **factory)) if bias else None
            self.register_parameter(f"bias{suffix}", bias_param)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weights uniform in ``+-1/sqrt(H)``; bias 0 but the forget gate's, in ``[3, 6]``."""
        for suffix in self._suffixes():
            _init_weights(
                self.hidden_size,
                self.num_heads,
                getattr(self, f"weight_ih{suffix}"),
                getattr(self, f"bias{suffix}"),
                self.forget_gate == "exp",
            )

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        heads, size = self.num_heads, self.head_size
        return ((self.hidden_size,), (heads, size, size), (heads, size), (heads,))

    def _project(self, layer: int, reverse: bool, x: Tensor) -> tuple[Tensor, ...]:
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        return project(
            x,
            getattr(self, f"weight_ih{suffix}"),
            getattr(self, f"bias{suffix}"),
            self.num_heads,
            self.forget_gate == "exp",
        )

    def _direction(
        self, layer: int, reverse: bool, x: Tensor, state: XState, valid: Tensor | None
    ) -> tuple[Tensor, XState]:
        _check_choice("form", self.form, FORMS)
        # (T, B, NH, ...) -> (B, NH, T, ...): heads and batch outside, time inside
        q, k, v, o, i_pre, log_f = (part.movedim(0, 2) for part in self._project(layer, reverse, x))
        o = o.movedim(2, 0)  # back to (T, B, NH, d)
        mstate: MState = (state[1], state[2], state[3])
        keep = None if valid is None else valid.transpose(0, 1)  # (B, T)
        if self.form == "recurrent":
            h, final = recurrent_sequence(q, k, v, i_pre, log_f, mstate, keep)
        else:
            if keep is not None:  # a padded step: f' = 1, i' = 0, the state stays
                log_f = torch.where(keep.unsqueeze(1), log_f, 0.0)
                i_pre = torch.where(keep.unsqueeze(1), i_pre, float("-inf"))
            h, final = parallel_sequence(q, k, v, i_pre, log_f, mstate, self.chunk_size)
        out = (o * h.permute(2, 0, 1, 3)).flatten(-2)  # (T, B, H)
        if valid is None:
            return out, (out[-1], *final)
        out = torch.where(valid.unsqueeze(-1), out, 0.0)
        last = (valid.sum(0) - 1).view(1, -1, 1).expand(1, *out.shape[1:])  # (1, B, H)
        return out, (out.gather(0, last)[0], *final)

    def _cell_step(self, layer: int, x: Tensor, state: XState) -> tuple[Tensor, XState]:
        q, k, v, o, i_pre, log_f = self._project(layer, False, x)
        h, final = recurrent_step(q, k, v, i_pre, log_f, (state[1], state[2], state[3]))
        out = (o * h).flatten(-2)
        return out, (out, *final)

    def explain(self, batch: int | None = None) -> str:
        """Which form runs and why, in words."""
        heads = f"{self.num_heads} head(s) of {self.head_size}"
        if self.form == "recurrent":
            return (
                f"mLSTM ({heads}): recurrent form, one step at a time in plain autograd "
                "(inference and streaming; set form='parallel' to train)"
            )
        chunks = "one T x T block" if self.chunk_size is None else f"chunks of {self.chunk_size}"
        return (
            f"mLSTM ({heads}): parallel form, a stabilized decay-masked attention over "
            f"{chunks} steps, each chunk starting from the previous chunk's final state "
            "(rnnlab.nn.modern.mlstm_forms); same numbers as form='recurrent'"
        )

    def extra_repr(self) -> str:
        text = f"{super().extra_repr()}, form={self.form!r}, chunk_size={self.chunk_size}"
        return text if self.forget_gate == "sigmoid" else f"{text}, forget_gate='exp'"
