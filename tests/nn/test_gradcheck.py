"""float64 gradcheck of every cell and of every layer extra, in training mode.

Random masks (recurrent dropout, zoneout, DropConnect, dropout between layers) are drawn
from a fixed seed inside the checked function, so each evaluation sees the same masks.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.autograd import gradcheck
from torch.func import functional_call

import rnnlab
from rnnlab.nn import force_loop

EXTRAS: list[dict[str, Any]] = [
    {},
    {"layer_norm": True},
    {"recurrent_dropout": 0.3},
    {"zoneout": 0.3},
    {"weight_drop": 0.3},
    {
        "layer_norm": True,
        "recurrent_dropout": 0.2,
        "zoneout": 0.2,
        "weight_drop": 0.2,
        "dropout": 0.2,
    },
]
LAYERS: list[tuple[str, type[nn.Module], dict[str, Any]]] = [
    ("rnn-tanh", rnnlab.RNN, {"nonlinearity": "tanh"}),
    ("rnn-relu", rnnlab.RNN, {"nonlinearity": "relu"}),
    ("lstm", rnnlab.LSTM, {}),
    ("lstm-proj", rnnlab.LSTM, {"proj_size": 2}),
    ("gru", rnnlab.GRU, {}),
]


def _check_module(module: nn.Module, x: Tensor, call: Any, fast_mode: bool = False) -> None:
    """gradcheck with respect to the input and every parameter.

    ``fast_mode`` checks random projections of the Jacobian (torch's fast gradcheck): as
    sensitive to a wrong backward, much cheaper for the hundreds of parameters of a stack.
    """
    names = [name for name, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())

    def function(x: Tensor, *flat: Tensor) -> tuple[Tensor, ...]:
        torch.manual_seed(123)
        return call(
            lambda *args, **kw: functional_call(
                module, dict(zip(names, flat, strict=True)), args, kw
            ),
            x,
        )

    assert gradcheck(function, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=fast_mode)


def _flatten(result: Any) -> tuple[Tensor, ...]:
    out, state = result
    states = state if isinstance(state, tuple) else (state,)
    return (out, *states)


@pytest.mark.parametrize(("name", "cls", "options"), LAYERS, ids=[n for n, _, _ in LAYERS])
@pytest.mark.parametrize("extras", EXTRAS, ids=lambda e: "+".join(e) or "plain")
def test_layer_gradcheck(
    name: str, cls: type[nn.Module], options: dict[str, Any], extras: dict[str, Any]
) -> None:
    torch.manual_seed(0)
    layer = cls(
        3, 4, num_layers=2, bidirectional=True, dtype=torch.float64, **options, **extras
    ).train()
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    _check_module(layer, x, lambda run, x: _flatten(run(x, None, [4, 2])), fast_mode=True)


@pytest.mark.parametrize("cls", [rnnlab.LSTM, rnnlab.GRU], ids=["lstm", "gru"])
def test_forced_loop_gradcheck(cls: type[nn.Module]) -> None:
    layer = cls(3, 4, dtype=torch.float64).train()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    with force_loop():
        _check_module(layer, x, lambda run, x: _flatten(run(x)))


CELLS: list[tuple[str, type[nn.Module], dict[str, Any]]] = [
    ("rnn-tanh", rnnlab.RNNCell, {"nonlinearity": "tanh"}),
    ("rnn-relu", rnnlab.RNNCell, {"nonlinearity": "relu"}),
    ("lstm", rnnlab.LSTMCell, {}),
    ("gru", rnnlab.GRUCell, {}),
]


@pytest.mark.parametrize(("name", "cls", "options"), CELLS, ids=[n for n, _, _ in CELLS])
@pytest.mark.parametrize("layer_norm", [False, True], ids=["plain", "layer_norm"])
def test_cell_gradcheck(
    name: str, cls: type[nn.Module], options: dict[str, Any], layer_norm: bool
) -> None:
    torch.manual_seed(0)
    cell = cls(3, 4, dtype=torch.float64, layer_norm=layer_norm, **options)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)

    def call(run: Any, x: Tensor) -> tuple[Tensor, ...]:
        out = run(x)
        return tuple(out) if isinstance(out, tuple) else (out,)

    _check_module(cell, x, call)
