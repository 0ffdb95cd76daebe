r"""The RNN, LSTM and GRU layers: drop-in ``torch.nn`` layers with variable lengths and extras.

Each subclasses :class:`rnnlab.nn.recurrent.RecurrentLayer` (lengths, extras, kernel
routing) before its ``torch.nn`` class (constructor, parameters, torch's fused forward); the
step equations below are those of ``rnnlab.nn.steps``.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.nn import validation
from rnnlab.nn.recurrent import RecurrentLayer


def _check_common(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
    validation.check_size("input_size", input_size)
    validation.check_size("hidden_size", hidden_size)
    validation.check_size("num_layers", num_layers)
    validation.check_probability("dropout", dropout)


class RNN(RecurrentLayer, nn.RNN):  # type: ignore[misc]
    r"""Simple (Elman) RNN layer, a drop-in ``torch.nn.RNN`` with lengths and extras.

    .. math::
        h_t = \phi(\mathrm{LN}(W_{ih} x_t) + b_{ih} + \mathrm{LN}(W_{hh} h_{t-1}) + b_{hh})

    with ``phi`` tanh or ReLU and ``LN`` the identity unless ``layer_norm``.

    Args:
        input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout,
        bidirectional, device, dtype: as in ``torch.nn.RNN``.
        layer_norm: layer-normalize both pre-activations (Ba et al. 2016).
        recurrent_dropout: probability of the per-sequence mask on ``h_{t-1}`` feeding ``W_hh``.
        zoneout: probability that a unit keeps its previous value at a step.
        weight_drop: DropConnect probability on the entries of ``W_hh``.

    Example:
        >>> import torch, rnnlab
        >>> rnn = rnnlab.RNN(8, 16, num_layers=2, batch_first=True, layer_norm=True)
        >>> out, h_n = rnn(torch.randn(4, 10, 8), lengths=[10, 7, 3, 1])
        >>> out.shape, h_n.shape
        (torch.Size([4, 10, 16]), torch.Size([2, 4, 16]))
    """

    family = "rnn"
    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        _check_common(input_size, hidden_size, num_layers, dropout)
        validation.check_nonlinearity(nonlinearity)
        nn.RNN.__init__(
            self,
            input_size,
            hidden_size,
            num_layers=num_layers,
            nonlinearity=nonlinearity,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            device=device,
            dtype=dtype,
        )
        factory = {"device": device, "dtype": dtype}
        self._setup_extras(layer_norm, recurrent_dropout, zoneout, weight_drop, None, factory)


class LSTM(RecurrentLayer, nn.LSTM):  # type: ignore[misc]
    r"""LSTM layer, a drop-in ``torch.nn.LSTM`` with lengths and extras.

    Gate order ``i, f, g, o`` as in torch::

        i, f, g, o = LN(W_ih x_t) + b_ih + LN(W_hh h_{t-1}) + b_hh      (split in four)
        c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
        h_t = sigmoid(o) * tanh(LN(c_t))        and, with proj_size > 0, h_t = W_hr h_t

    ``LN`` is the identity unless ``layer_norm`` (Ba et al. 2016: separate gains and biases
    for the input part, the recurrent part and the cell).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
        proj_size, device, dtype: as in ``torch.nn.LSTM``.
        layer_norm: layer-normalized gates and cell.
        recurrent_dropout: probability of the per-sequence mask on ``h_{t-1}`` feeding ``W_hh``.
        zoneout: probability that a unit of ``h`` (and, independently, of ``c``) keeps its
            previous value at a step.
        weight_drop: DropConnect probability on the entries of ``W_hh``.
        forget_bias: initial value of the forget-gate bias (``bias_ih``; ``bias_hh``'s forget
            slice starts at 0). ``None`` keeps torch's uniform initialization.

    Example:
        >>> import torch, rnnlab
        >>> lstm = rnnlab.LSTM(8, 32, proj_size=16, zoneout=0.1, forget_bias=1.0)
        >>> out, (h_n, c_n) = lstm(torch.randn(12, 3, 8))
        >>> out.shape, h_n.shape, c_n.shape
        (torch.Size([12, 3, 16]), torch.Size([1, 3, 16]), torch.Size([1, 3, 32]))
    """

    family = "lstm"
    gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        weight_drop: float = 0.0,
        forget_bias: float | None = None,
    ) -> None:
        _check_common(input_size, hidden_size, num_layers, dropout)
        validation.check_size("proj_size", proj_size, minimum=0)
        if proj_size >= hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size={hidden_size}, got {proj_size}"
            )
        nn.LSTM.__init__(
            self,
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            device=device,
            dtype=dtype,
        )
        factory = {"device": device, "dtype": dtype}
        self._setup_extras(
            layer_norm, recurrent_dropout, zoneout, weight_drop, forget_bias, factory
        )


class GRU(RecurrentLayer, nn.GRU):  # type: ignore[misc]
    r"""GRU layer, a drop-in ``torch.nn.GRU`` with lengths and extras.

    Gate order ``r, z, n``; the reset gate multiplies the recurrent term after the matrix
    multiply, as in torch and cuDNN::

        r = sigmoid(a_r + b_r),  z = sigmoid(a_z + b_z)     a = LN(W_ih x_t) + b_ih
        n = tanh(a_n + r * b_n)                              b = LN(W_hh h_{t-1}) + b_hh
        h_t = (1 - z) * n + z * h_{t-1}

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
        device, dtype: as in ``torch.nn.GRU``.
        layer_norm, recurrent_dropout, zoneout, weight_drop: as for :class:`RNN`.

    Example:
        >>> import torch, rnnlab
        >>> gru = rnnlab.GRU(8, 16, bidirectional=True, recurrent_dropout=0.25)
        >>> out, h_n = gru(torch.randn(5, 2, 8))
        >>> out.shape, h_n.shape
        (torch.Size([5, 2, 32]), torch.Size([2, 2, 16]))
    """

    family = "gru"
    gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        _check_common(input_size, hidden_size, num_layers, dropout)
        nn.GRU.__init__(
            self,
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            device=device,
            dtype=dtype,
        )
        factory = {"device": device, "dtype": dtype}
        self._setup_extras(layer_norm, recurrent_dropout, zoneout, weight_drop, None, factory)
