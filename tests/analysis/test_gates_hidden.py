"""Gate and hidden-state statistics on cases with known answers."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.analysis import GateStat, gate_statistics, gate_table, hidden_statistics


def _by_gate(stats: list[GateStat]) -> dict[str, GateStat]:
    return {s.gate: s for s in stats if s.row == "l0"}


def test_lstm_gates_forced_saturated_by_large_biases() -> None:
    torch.manual_seed(0)
    lstm = rnnlab.LSTM(3, 8)
    with torch.no_grad():
        lstm.bias_ih_l0.zero_()
        lstm.bias_hh_l0.zero_()
        lstm.bias_ih_l0[0:8] = 20.0  # i -> 1
        lstm.bias_ih_l0[8:16] = -20.0  # f -> 0
        lstm.bias_ih_l0[16:24] = 20.0  # g -> +1 (tanh)
        # o left at 0 bias with zero weights: exactly 0.5, never saturated
        lstm.weight_ih_l0[24:32] = 0.0
        lstm.weight_hh_l0[24:32] = 0.0
    stats = _by_gate(gate_statistics(lstm, torch.randn(10, 4, 3)))
    assert stats["i"].mean > 0.99 and stats["i"].saturated == 1.0 and stats["i"].high == 1.0
    assert stats["f"].mean < 0.01 and stats["f"].saturated == 1.0 and stats["f"].low == 1.0
    assert stats["g"].mean > 0.99 and stats["g"].saturated == 1.0
    assert stats["o"].mean == pytest.approx(0.5) and stats["o"].saturated == 0.0
    assert "| l0 | f |" in gate_table(list(stats.values()))


def test_gru_gates_and_rows_and_lengths() -> None:
    torch.manual_seed(0)
    gru = rnnlab.GRU(3, 6, num_layers=2, batch_first=True)
    with torch.no_grad():
        gru.bias_hh_l1[6:12] = -30.0  # z of layer 1 -> 0
    x = torch.randn(4, 9, 3)
    stats = gate_statistics(gru, x, lengths=[9, 5, 2, 1])
    assert [(s.row, s.gate) for s in stats] == [
        (r, g) for r in ("l0", "l1") for g in ("r", "z", "n")
    ]
    z1 = next(s for s in stats if s.row == "l1" and s.gate == "z")
    assert z1.low == 1.0 and z1.mean < 1e-6
    z0 = next(s for s in stats if s.row == "l0" and s.gate == "z")
    assert 0.0 <= z0.saturated < 0.5  # default init: gates near 0.5


def test_gate_statistics_exclude_padding() -> None:
    torch.manual_seed(0)
    lstm = rnnlab.LSTM(2, 4, batch_first=True)
    x = torch.randn(2, 6, 2)
    x_padded = x.clone()
    x_padded[1, 3:] = 1000.0  # garbage past the length saturates everything if counted
    clean = gate_statistics(lstm, x_padded[:, :3])
    padded = gate_statistics(lstm, x_padded, lengths=[3, 3])
    for a, b in zip(clean, padded, strict=True):
        assert a.mean == pytest.approx(b.mean) and a.saturated == pytest.approx(b.saturated)


def test_gate_statistics_reject_simple_rnn() -> None:
    with pytest.raises(ValueError, match="LSTM or GRU"):
        gate_statistics(rnnlab.RNN(2, 3), torch.randn(4, 2, 2))


def test_hidden_statistics_known_values() -> None:
    # relu RNN with zero recurrent weight and bias: h_t = relu(w x_t); constant x -> known value
    rnn = rnnlab.RNN(1, 2, nonlinearity="relu")
    with torch.no_grad():
        rnn.weight_hh_l0.zero_()
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()
        rnn.weight_ih_l0.copy_(torch.tensor([[1.0], [3.0]]))
    x = torch.ones(5, 3, 1)
    x[2] = 2.0
    stats = hidden_statistics(rnn, x)
    assert stats.rows == ("l0",)
    assert stats.mean[0].tolist() == [2.0, 2.0, 4.0, 2.0, 2.0]
    # values {1, 3} repeated over the batch: sample std over 6 entries
    expected_std = torch.tensor([1.0, 1.0, 1.0, 3.0, 3.0, 3.0]).std().item()
    assert stats.std[0, 0].item() == pytest.approx(expected_std)
    assert stats.overall_mean[0] == pytest.approx(12.0 / 5.0)
    assert set(stats.to_dict()) == {"rows", "mean", "std", "overall_mean", "overall_std"}
