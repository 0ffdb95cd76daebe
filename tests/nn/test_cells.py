"""Cells: parity with torch.nn cells, one step of the matching layer, init_state."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

import rnnlab
from rnnlab.nn import force_loop

TOL = {"atol": 1e-5, "rtol": 1e-5}
CELLS: list[tuple[type[nn.Module], type[nn.Module], type[nn.Module], dict[str, Any]]] = [
    (rnnlab.RNNCell, nn.RNNCell, rnnlab.RNN, {"nonlinearity": "tanh"}),
    (rnnlab.RNNCell, nn.RNNCell, rnnlab.RNN, {"nonlinearity": "relu"}),
    (rnnlab.LSTMCell, nn.LSTMCell, rnnlab.LSTM, {}),
    (rnnlab.GRUCell, nn.GRUCell, rnnlab.GRU, {}),
]
IDS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]


def _as_list(state: Tensor | tuple[Tensor, Tensor]) -> list[Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize(("ours", "theirs", "layer", "options"), CELLS, ids=IDS)
@pytest.mark.parametrize("bias", [True, False])
def test_cell_matches_torch_cell(
    ours: Any, theirs: Any, layer: Any, options: Any, bias: bool
) -> None:
    cell = ours(3, 5, bias=bias, **options)
    reference = theirs(3, 5, bias=bias, **options)
    reference.load_state_dict(cell.state_dict())
    x = torch.randn(4, 3)
    state = cell.init_state(4)
    state = (
        tuple(torch.randn_like(s) for s in state)
        if isinstance(state, tuple)
        else torch.randn_like(state)
    )
    for a, b in zip(_as_list(cell(x, state)), _as_list(reference(x, state)), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    # unbatched
    for a, b in zip(_as_list(cell(x[0])), _as_list(reference(x[0])), strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize(("ours", "theirs", "layer", "options"), CELLS, ids=IDS)
@pytest.mark.parametrize("layer_norm", [False, True])
def test_cell_is_one_step_of_the_layer(
    ours: Any, theirs: Any, layer: Any, options: Any, layer_norm: bool
) -> None:
    torch.manual_seed(0)
    cell = ours(3, 5, layer_norm=layer_norm, **options)
    stack = layer(3, 5, layer_norm=layer_norm, **options)
    with torch.no_grad():  # perturb the layer-norm parameters so they matter
        for p in cell.parameters():
            p.add_(0.1 * torch.randn_like(p))
    stack.load_state_dict({f"{name}_l0": value for name, value in cell.state_dict().items()})
    x = torch.randn(4, 3)
    state = cell.init_state(4)
    state = (
        tuple(torch.randn_like(s) for s in state)
        if isinstance(state, tuple)
        else torch.randn_like(state)
    )
    step = _as_list(cell(x, state))
    layer_state = (
        tuple(s.unsqueeze(0) for s in state) if isinstance(state, tuple) else state.unsqueeze(0)
    )
    with force_loop():
        out, final = stack(x.unsqueeze(0), layer_state)
    torch.testing.assert_close(out[0], step[0], **TOL)
    for a, b in zip(_as_list(final), step, strict=True):
        torch.testing.assert_close(a[0], b, **TOL)


def test_init_state_shapes() -> None:
    assert rnnlab.GRUCell(2, 7).init_state(3).shape == (3, 7)
    h, c = rnnlab.LSTMCell(2, 7).init_state(3, dtype=torch.float64)
    assert h.shape == c.shape == (3, 7)
    assert h.dtype == torch.float64
    assert torch.count_nonzero(h) == 0


def test_lstm_cell_forget_bias() -> None:
    cell = rnnlab.LSTMCell(2, 4, forget_bias=1.0)
    assert torch.all(cell.bias_ih[4:8] == 1.0)
    assert torch.all(cell.bias_hh[4:8] == 0.0)
