"""The step-by-step trace reproduces the layers and records consistent gates."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.analysis import trace

CASES: list[tuple[type[nn.Module], dict[str, Any]]] = [
    (rnnlab.RNN, {}),
    (rnnlab.RNN, {"nonlinearity": "relu"}),
    (rnnlab.LSTM, {"proj_size": 3}),
    (rnnlab.LSTM, {"layer_norm": True, "zoneout": 0.2}),
    (rnnlab.GRU, {"layer_norm": True}),
    (rnnlab.GRU, {"zoneout": 0.1}),
]


@pytest.mark.parametrize(("cls", "options"), CASES)
def test_trace_output_equals_layer_in_eval_mode(
    cls: type[nn.Module], options: dict[str, Any]
) -> None:
    torch.manual_seed(0)
    # float64: the trace's op order differs from the fused kernels', and in float32 layer
    # norm's rounding alone reaches 2e-6; in float64 any real difference stands out.
    layer = cls(4, 6, num_layers=2, bidirectional=True, batch_first=True, **options)
    layer = layer.double().eval()
    x = torch.randn(3, 9, 4, dtype=torch.float64)
    lengths = [9, 4, 1]
    expected, _ = layer(x, lengths=lengths)
    traced = trace(layer, x, lengths=lengths)
    assert traced.rows == ("l0", "l0_reverse", "l1", "l1_reverse")
    torch.testing.assert_close(traced.output, expected, atol=1e-6, rtol=1e-5)
    # the last state of each forward row at each sequence's length is h_n
    _, state = layer(x, lengths=lengths)
    h_n = state[0] if isinstance(state, tuple) else state
    for b, length in enumerate(lengths):
        torch.testing.assert_close(traced.hidden["l1"][length - 1][b], h_n[2, b])
        torch.testing.assert_close(traced.hidden["l1_reverse"][0][b], h_n[3, b])


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_trace_accepts_torch_layers(cls: type[nn.Module]) -> None:
    torch.manual_seed(1)
    layer = cls(3, 5, num_layers=2)
    x = torch.randn(6, 2, 3)
    torch.testing.assert_close(trace(layer, x).output, layer(x)[0], atol=1e-6, rtol=1e-5)


def test_recorded_gates_reproduce_the_lstm_and_gru_updates() -> None:
    torch.manual_seed(2)
    x = torch.randn(7, 3, 4)
    lstm = rnnlab.LSTM(4, 5)
    tr = trace(lstm, x, record_gates=True)
    gates = tr.gates["l0"]
    c_prev = torch.zeros(3, 5)
    for t in range(7):
        i, f, g, o = (gates[k][t] for k in "ifgo")
        c = f * c_prev + i * g
        torch.testing.assert_close(c, tr.cell["l0"][t])
        torch.testing.assert_close(o * torch.tanh(c), tr.hidden["l0"][t])
        c_prev = c
    gru = rnnlab.GRU(4, 5)
    tr = trace(gru, x, record_gates=True)
    gates = tr.gates["l0"]
    h_prev = torch.zeros(3, 5)
    for t in range(7):
        z, n = gates["z"][t], gates["n"][t]
        h = (1 - z) * n + z * h_prev
        torch.testing.assert_close(h, tr.hidden["l0"][t])
        h_prev = h


def test_trace_rejects_other_modules_and_bad_lengths() -> None:
    with pytest.raises(ValueError, match="Linear"):
        trace(nn.Linear(2, 2), torch.randn(3, 2, 2))
    with pytest.raises(ValueError, match="lengths"):
        trace(rnnlab.GRU(2, 3), torch.randn(4, 2, 2), lengths=[5, 1])
    with pytest.raises(ValueError, match="shape"):
        trace(rnnlab.GRU(2, 3), torch.randn(4, 2, 3))
