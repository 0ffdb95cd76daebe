"""One-step cells: drop-in ``torch.nn.RNNCell / LSTMCell / GRUCell`` with layer normalization.

A cell computes one time step: ``cell(x_t, state)`` with ``x_t`` of shape ``(B, I)`` (or
``(I,)`` unbatched) returns the new state, exactly as torch's cells do: ``h'`` for RNN and GRU,
``(h', c')`` for LSTM, where the output of the step is ``h'``. ``cell.init_state(batch)``
gives the zero state. The parameters (``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``) are torch's, so ``load_state_dict`` works both ways. With ``layer_norm=True``
the cell runs the layer-normalized equations of ``rnnlab.nn.steps``; otherwise torch's own
cell kernel.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from rnnlab.nn import validation
from rnnlab.nn.steps import StepWeights, gru_step, input_projection, lstm_step, rnn_step

CellState = Tensor | tuple[Tensor, Tensor]


class CellMixin(nn.RNNCellBase):
    """What the three cells share: layer-norm parameters, input checks, ``init_state``."""

    gates: ClassVar[int]
    layer_norm: bool

    def _setup(self, layer_norm: bool, factory: dict[str, Any]) -> None:
        self.layer_norm = bool(layer_norm)
        if self.layer_norm:
            size = self.gates * self.hidden_size
            for where in ("ih", "hh"):
                self.register_parameter(
                    f"ln_{where}_weight", nn.Parameter(torch.ones(size, **factory))
                )
                self.register_parameter(
                    f"ln_{where}_bias", nn.Parameter(torch.zeros(size, **factory))
                )
            if self.gates == 4:
                self.ln_c_weight = nn.Parameter(torch.ones(self.hidden_size, **factory))
                self.ln_c_bias = nn.Parameter(torch.zeros(self.hidden_size, **factory))
        self._init_extras()

    def reset_parameters(self) -> None:
        """torch's uniform initialization; layer-norm gains 1 and biases 0."""
        super().reset_parameters()
        self._init_extras()

    def _init_extras(self) -> None:
        for name, param in self.named_parameters(recurse=False):
            if name.startswith("ln_"):
                with torch.no_grad():
                    param.fill_(1.0 if name.endswith("_weight") else 0.0)

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> CellState:
        """The zero state for ``batch`` sequences: ``(B, H)``, or ``(h, c)`` for LSTM."""
        h = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        return (h, torch.zeros_like(h)) if self.gates == 4 else h

    def _weights(self) -> StepWeights:
        def norm(where: str) -> tuple[Tensor, Tensor] | None:
            if not self.layer_norm:
                return None
            return getattr(self, f"ln_{where}_weight"), getattr(self, f"ln_{where}_bias")

        return StepWeights(
            w_ih=self.weight_ih,
            w_hh=self.weight_hh,
            b_ih=self.bias_ih if self.bias else None,
            b_hh=self.bias_hh if self.bias else None,
            ln_ih=norm("ih"),
            ln_hh=norm("hh"),
            ln_c=norm("c") if self.gates == 4 else None,
        )

    def _prepare(self, input: Tensor, hx: CellState | None) -> tuple[Tensor, CellState, bool]:
        """Check shapes, add a batch dimension to unbatched input, fill a missing state."""
        name = type(self).__name__
        validation.check_input(name, input, self.input_size, (1, 2))
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
            if isinstance(hx, tuple):
                hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
            elif hx is not None:
                hx = hx.unsqueeze(0)
        batch = input.shape[0]
        if hx is None:
            hx = self.init_state(batch, input.device, input.dtype)
        expected = (batch, self.hidden_size)
        if self.gates == 4:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError(f"{name}: hx must be a pair (h, c), got {type(hx).__name__}")
            validation.check_state(f"{name}: h", hx[0], expected)
            validation.check_state(f"{name}: c", hx[1], expected)
        else:
            validation.check_state(f"{name}: h", cast(Tensor, hx), expected)
        return input, hx, batched


class RNNCell(CellMixin, nn.RNNCell):
    r"""One step of the simple RNN: ``h' = act(LN(W_ih x) + b_ih + LN(W_hh h) + b_hh)``.

    Example:
        >>> import torch, rnnlab
        >>> cell = rnnlab.RNNCell(4, 8, nonlinearity="relu", layer_norm=True)
        >>> cell(torch.randn(3, 4)).shape
        torch.Size([3, 8])
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
    ) -> None:
        validation.check_size("input_size", input_size)
        validation.check_size("hidden_size", hidden_size)
        validation.check_nonlinearity(nonlinearity)
        nn.RNNCell.__init__(
            self,
            input_size,
            hidden_size,
            bias=bias,
            nonlinearity=nonlinearity,
            device=device,
            dtype=dtype,
        )
        self._setup(layer_norm, {"device": device, "dtype": dtype})

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """``h'`` of shape ``(B, H)`` (``(H,)`` for unbatched input)."""
        if not self.layer_norm:
            self._prepare(input, hx)
            return super().forward(input, hx)
        x, state, batched = self._prepare(input, hx)
        w = self._weights()
        h = rnn_step(input_projection(x, w), cast(Tensor, state), w, self.nonlinearity)
        return h if batched else h.squeeze(0)


class LSTMCell(CellMixin, nn.LSTMCell):
    r"""One LSTM step (gate order ``i, f, g, o``), returning ``(h', c')``::

        i, f, g, o = LN(W_ih x) + b_ih + LN(W_hh h) + b_hh
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g);   h' = sigmoid(o) * tanh(LN(c'))

    ``forget_bias`` sets the forget slice of ``bias_ih`` (and zeroes that of ``bias_hh``).

    Example:
        >>> import torch, rnnlab
        >>> cell = rnnlab.LSTMCell(4, 8, forget_bias=1.0)
        >>> h, c = cell(torch.randn(3, 4))
        >>> h.shape, c.shape
        (torch.Size([3, 8]), torch.Size([3, 8]))
    """

    gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
        forget_bias: float | None = None,
    ) -> None:
        validation.check_size("input_size", input_size)
        validation.check_size("hidden_size", hidden_size)
        if forget_bias is not None and not bias:
            raise ValueError(f"forget_bias={forget_bias} needs bias=True")
        nn.LSTMCell.__init__(self, input_size, hidden_size, bias=bias, device=device, dtype=dtype)
        self.forget_bias = forget_bias
        self._setup(layer_norm, {"device": device, "dtype": dtype})

    def _init_extras(self) -> None:
        """Layer norm as every cell, then ``forget_bias``."""
        super()._init_extras()
        forget_bias = getattr(self, "forget_bias", None)
        if forget_bias is not None:
            hidden = self.hidden_size
            with torch.no_grad():
                self.bias_ih[hidden : 2 * hidden].fill_(forget_bias)
                self.bias_hh[hidden : 2 * hidden].zero_()

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(h', c')``, each ``(B, H)`` (``(H,)`` for unbatched input)."""
        if not self.layer_norm:
            self._prepare(input, hx)
            return super().forward(input, hx)
        x, state, batched = self._prepare(input, hx)
        h, c = cast(tuple[Tensor, Tensor], state)
        w = self._weights()
        h_new, c_new = lstm_step(input_projection(x, w), h, c, w)
        if not batched:
            return h_new.squeeze(0), c_new.squeeze(0)
        return h_new, c_new


class GRUCell(CellMixin, nn.GRUCell):
    r"""One GRU step (gate order ``r, z, n``, reset after the matrix multiply)::

        r = sigmoid(a_r + b_r);  z = sigmoid(a_z + b_z);  n = tanh(a_n + r * b_n)
        h' = (1 - z) * n + z * h          a = LN(W_ih x) + b_ih,  b = LN(W_hh h) + b_hh

    Example:
        >>> import torch, rnnlab
        >>> rnnlab.GRUCell(4, 8)(torch.randn(3, 4)).shape
        torch.Size([3, 8])
    """

    gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
    ) -> None:
        validation.check_size("input_size", input_size)
        validation.check_size("hidden_size", hidden_size)
        nn.GRUCell.__init__(self, input_size, hidden_size, bias=bias, device=device, dtype=dtype)
        self._setup(layer_norm, {"device": device, "dtype": dtype})

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """``h'`` of shape ``(B, H)`` (``(H,)`` for unbatched input)."""
        if not self.layer_norm:
            self._prepare(input, hx)
            return super().forward(input, hx)
        x, state, batched = self._prepare(input, hx)
        h = cast(Tensor, state)
        w = self._weights()
        h_new = gru_step(input_projection(x, w), h, h, w)
        return h_new if batched else h_new.squeeze(0)
