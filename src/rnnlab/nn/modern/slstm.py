"""sLSTM (Beck et al. 2024, "xLSTM"): exponential gating, a normalizer and a stabilizer.

One step, for pre-activations ``i~, f~, z~, o~ = W x_t + R h_{t-1} + b`` (``R`` block
diagonal: ``num_heads`` heads of ``d = H / num_heads`` units mix only within the head)::

    i_t = exp(i~_t)                       input gate, exponential
    f_t = sigmoid(f~_t)  or  exp(f~_t)    forget gate (forget_gate="sigmoid" | "exp")
    z_t = tanh(z~_t),  o_t = sigmoid(o~_t)
    c_t = f_t c_{t-1} + i_t z_t           cell
    n_t = f_t n_{t-1} + i_t               normalizer
    h_t = o_t c_t / n_t

The exponential gate overflows, so the state carries a stabilizer ``m`` and stores ``c`` and
``n`` scaled by ``exp(-m_t)`` (``h`` is unchanged by the scaling, as ``c / n`` is a ratio)::

    m_t  = max(log f_t + m_{t-1}, i~_t)
    i'_t = exp(i~_t - m_t),  f'_t = exp(log f_t + m_{t-1} - m_t)
    c_t  = f'_t c_{t-1} + i'_t z_t,  n_t = f'_t n_{t-1} + i'_t

The state is ``(h, c, n, m)``, each ``(num_layers * num_directions, B, H)``; zeros when
omitted. Parameters per layer and direction (suffix ``_l{k}``, ``_l{k}_reverse``):
``weight_ih`` ``(4H, I)`` with rows in the gate order ``i, f, z, o`` (``H`` each),
``weight_hh`` ``(num_heads, 4d, d)`` (head ``j``'s rows in the same gate order, for its
units ``j d ... (j + 1) d - 1``) and ``bias`` ``(4H)``. Weights start uniform in
``+-1/sqrt(H)``, the forget-gate bias evenly spaced in ``[3, 6]`` (0 for the exponential
gate) and the others at 0.

Training runs a hand-written backward (``rnnlab.nn.modern.slstm_bptt``): one autograd node
per direction and layer, its forward and backward time loops native C++
(``csrc/slstm.cpp``, built on first use) on CPU float32/float64 and TorchScript elsewhere;
:class:`SLSTMCell` is the same step in plain autograd, the reference it is tested against.

Example:
    >>> import torch
    >>> layer = SLSTM(3, 8, num_heads=2, batch_first=True)
    >>> out, (h, c, n, m) = layer(torch.randn(2, 5, 3))
    >>> tuple(out.shape), tuple(h.shape)
    ((2, 5, 8), (1, 2, 8))
    >>> y, state = layer.step(torch.randn(2, 3))  # one step, for streaming
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.nn import native, validation
from rnnlab.nn.modern import slstm_bptt
from rnnlab.nn.modern.slstm_bptt import SLSTMDirection
from rnnlab.nn.modern.xlstm_parts import XLSTMLayer, XState, forget_bias_init

FORGET_GATES = ("sigmoid", "exp")


def slstm_step(
    x: Tensor,
    state: XState,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor | None,
    exp_forget: bool = False,
) -> tuple[Tensor, XState]:
    """One sLSTM step in plain autograd: ``x`` ``(B, I)``, state ``(h, c, n, m)`` ``(B, H)``."""
    h, c, n, m = state
    batch, hidden = h.shape
    heads, size = weight_hh.shape[0], weight_hh.shape[2]
    rec = torch.bmm(h.view(batch, heads, size).transpose(0, 1), weight_hh.transpose(1, 2))
    rec = rec.view(heads, batch, 4, size).permute(1, 2, 0, 3).reshape(batch, 4 * hidden)
    i_pre, f_pre, z_pre, o_pre = (F.linear(x, weight_ih, bias) + rec).chunk(4, dim=1)
    a = (f_pre if exp_forget else F.logsigmoid(f_pre)) + m
    m_new = torch.maximum(a, i_pre)
    i_gate = torch.exp(i_pre - m_new)
    f_gate = torch.exp(a - m_new)
    c_new = f_gate * c + i_gate * torch.tanh(z_pre)
    n_new = f_gate * n + i_gate
    h_new = torch.sigmoid(o_pre) * c_new / n_new
    return h_new, (h_new, c_new, n_new, m_new)


def _check_forget_gate(value: str) -> None:
    if value not in FORGET_GATES:
        raise ValueError(f"forget_gate must be one of {FORGET_GATES}, got {value!r}")


def _init_weights(
    hidden: int, w_ih: Tensor, w_hh: Tensor, b: Tensor | None, exp_forget: bool
) -> None:
    bound = hidden**-0.5
    with torch.no_grad():
        w_ih.uniform_(-bound, bound)
        w_hh.uniform_(-bound, bound)
        if b is not None:
            b.zero_()
            b[hidden : 2 * hidden] = forget_bias_init(hidden, exp_forget).to(b)


class SLSTMCell(nn.Module):
    """One sLSTM step (equations in the module docstring), the reference of :class:`SLSTM`.

    ``cell(x_t, state)`` with ``x_t`` ``(B, I)`` returns ``(h_t, (h, c, n, m))``.
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
        _check_forget_gate(forget_gate)
        if hidden_size % num_heads:
            raise ValueError(
                f"hidden_size={hidden_size} must be a multiple of num_heads={num_heads}"
            )
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        size = hidden_size // num_heads
        self.input_size, self.hidden_size, self.num_heads = input_size, hidden_size, num_heads
        self.forget_gate = forget_gate
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(num_heads, 4 * size, size, **factory))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size, **factory)) if bias else None
        _init_weights(hidden_size, self.weight_ih, self.weight_hh, self.bias, forget_gate == "exp")

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> XState:
        """Zeros ``(h, c, n, m)``, each ``(batch, H)``."""
        like = self.weight_ih
        shape = (batch, self.hidden_size)
        return tuple(
            torch.zeros(shape, device=device or like.device, dtype=dtype or like.dtype)
            for _ in range(4)
        )

    def forward(self, x: Tensor, state: XState | None = None) -> tuple[Tensor, XState]:
        validation.check_input("SLSTMCell", x, self.input_size, (2,))
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        return slstm_step(
            x, state, self.weight_ih, self.weight_hh, self.bias, self.forget_gate == "exp"
        )


class SLSTM(XLSTMLayer):
    """Stacked, optionally bidirectional sLSTM layer (equations in the module docstring).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: as
            ``torch.nn.LSTM``.
        num_heads: heads of the block-diagonal recurrence (``hidden_size`` must be a
            multiple; the paper uses 4).
        forget_gate: ``"sigmoid"`` (default) or ``"exp"``.

    ``forward(x, hx=None, lengths=None)`` returns ``(output, (h, c, n, m))``; ``step(x_t,
    state)`` runs one step (see :class:`~rnnlab.nn.modern.xlstm_parts.XLSTMLayer`).
    """

    state_names = ("h", "c", "n", "m")

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
        _check_forget_gate(forget_gate)
        self.forget_gate = forget_gate
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        size = self.head_size
        for suffix in self._suffixes():
            layer = int(suffix[2:].split("_")[0])
            inputs = self._layer_input_size(layer)
            self.register_parameter(
                f"weight_ih{suffix}",
                nn.Parameter(torch.empty(4 * hidden_size, inputs, **factory)),
            )
            self.register_parameter(
                f"weight_hh{suffix}",
                nn.Parameter(torch.empty(num_heads, 4 * size, size, **factory)),
            )
            bias_param = nn.Parameter(torch.empty(4 * hidden_size, **factory)) if bias else None
            self.register_parameter(f"bias{suffix}", bias_param)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weights uniform in ``+-1/sqrt(H)``; bias 0 but the forget gate's, in ``[3, 6]``."""
        for suffix in self._suffixes():
            _init_weights(
                self.hidden_size,
                getattr(self, f"weight_ih{suffix}"),
                getattr(self, f"weight_hh{suffix}"),
                getattr(self, f"bias{suffix}"),
                self.forget_gate == "exp",
            )

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.hidden_size,),) * 4

    def _weights(self, layer: int, reverse: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        return (
            getattr(self, f"weight_ih{suffix}"),
            getattr(self, f"weight_hh{suffix}"),
            getattr(self, f"bias{suffix}"),
        )

    def _direction(
        self, layer: int, reverse: bool, x: Tensor, state: XState, valid: Tensor | None
    ) -> tuple[Tensor, XState]:
        w_ih, w_hh, b = self._weights(layer, reverse)
        steps, batch = x.shape[0], x.shape[1]
        heads, size = self.num_heads, self.head_size
        # one matmul over all steps, then heads first: (T, B, 4, NH, d) -> (T, NH, B, 4d)
        pre = F.linear(x, w_ih, b).view(steps, batch, 4, heads, size)
        pre = pre.permute(0, 3, 1, 2, 4).reshape(steps, heads, batch, 4 * size)

        def heads_first(s: Tensor) -> Tensor:  # (B, H) -> (NH, B, d)
            return s.view(batch, heads, size).transpose(0, 1)

        mask = None if valid is None else valid.view(steps, 1, batch, 1)
        out, h, c, n, m = SLSTMDirection.apply(
            pre,
            w_hh.transpose(1, 2),
            *(heads_first(s) for s in state),
            mask,
            self.forget_gate == "exp",
        )
        out = out.permute(0, 2, 1, 3).reshape(steps, batch, self.hidden_size)

        def back(s: Tensor) -> Tensor:  # (NH, B, d) -> (B, H)
            return s.transpose(0, 1).reshape(batch, self.hidden_size)

        return out, (back(h), back(c), back(n), back(m))

    def _cell_step(self, layer: int, x: Tensor, state: XState) -> tuple[Tensor, XState]:
        w_ih, w_hh, b = self._weights(layer, False)
        return slstm_step(x, state, w_ih, w_hh, b, self.forget_gate == "exp")

    def explain(self, batch: int | None = None) -> str:
        """Which implementation runs and why, in words."""
        head = (
            f"sLSTM ({self.num_heads} head(s) of {self.head_size}, {self.forget_gate} forget "
            "gate): one input matmul over all steps, then a per-step loop with a "
            "hand-written backward, one autograd node per direction and layer "
            "(rnnlab.nn.modern.slstm_bptt); "
        )
        params = list(self.parameters())
        like = params[0] if params else torch.zeros(1)
        status = slstm_bptt.native_status()
        if native.python_forced():
            why = "inside rnnlab.nn.native.python_loops()"
        elif status != "available":
            why = f"the native loops are {status}"
        elif not slstm_bptt.use_native(like):
            why = f"the native loops need CPU float32/float64, not {like.device} {like.dtype}"
        else:
            why = ""
        if why:
            loops = (
                "both loops compiled by TorchScript where it can (one baddbmm over the heads "
                f"and some twenty element-wise ops per step), as {why}"
            )
        else:
            loops = (
                "both loops native C++ (csrc/slstm.cpp) on CPU float32/float64: per step one "
                "block-diagonal recurrent matmul (a hand loop for a single batch row, else one "
                "bmm over the heads) and one fused pass over all gate arithmetic; other "
                "devices and dtypes run the TorchScript loops"
            )
        return head + loops + "; step() runs the plain autograd step of SLSTMCell"

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.forget_gate == "sigmoid" else f"{text}, forget_gate='exp'"
