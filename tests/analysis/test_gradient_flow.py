"""Gradient flow against hand-computed linear recurrences."""

from __future__ import annotations

import math

import pytest
import torch

import rnnlab
from rnnlab.analysis import gradient_flow, gradient_flow_of_states, gradient_norms, trace
from rnnlab.data.synthetic import adding_problem


def _linear_relu_rnn(weights: list[torch.Tensor], hidden: int, input_size: int) -> rnnlab.RNN:
    """A ReLU RNN with positive weights: on positive inputs relu is the identity."""
    layer = rnnlab.RNN(input_size, hidden, num_layers=len(weights), nonlinearity="relu")
    with torch.no_grad():
        for k, w_hh in enumerate(weights):
            getattr(layer, f"weight_hh_l{k}").copy_(w_hh)
            getattr(layer, f"weight_ih_l{k}").fill_(0.3)
            getattr(layer, f"bias_ih_l{k}").fill_(0.1)
            getattr(layer, f"bias_hh_l{k}").fill_(0.0)
    return layer


def test_scalar_linear_recurrence_by_hand() -> None:
    # h_t = 0.5 h_{t-1} + 0.3 x_t + 0.1,  L = sum_b h_T  =>  dL/dh_t = 0.5^(T - t)
    steps = 5
    layer = _linear_relu_rnn([torch.tensor([[0.5]])], hidden=1, input_size=1)
    x = torch.rand(steps, 4, 1) + 0.1
    flow = gradient_flow(layer, x, lambda out: out[-1].sum())
    expected = torch.tensor([0.5**4, 0.5**3, 0.5**2, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(flow.hidden[0], expected)
    assert math.isclose(flow.ratio(), 0.0625)
    assert flow.ratios() == {"l0": flow.ratio()}


def test_matrix_linear_recurrence_equals_transposed_powers() -> None:
    # dL/dh_t = (W^T)^(T - t) v for L = sum_b v . h_T, the same for every sequence
    torch.manual_seed(0)
    steps, hidden = 12, 3
    w = torch.rand(hidden, hidden) * 0.4
    v = torch.tensor([1.0, -2.0, 0.5])
    layer = _linear_relu_rnn([w], hidden, input_size=2)
    x = torch.rand(steps, 5, 2)
    flow = gradient_flow(layer, x, lambda out: (out[-1] * v).sum())
    w64, v64 = w.double(), v.double()
    expected = [
        torch.linalg.matrix_power(w64.t(), steps - 1 - t).mv(v64).norm() for t in range(steps)
    ]
    torch.testing.assert_close(flow.hidden[0], torch.stack(expected))
    assert math.isclose(flow.ratio(), float(expected[0] / expected[-1]), rel_tol=1e-5)


def test_two_layer_linear_recurrence_by_backward_recursion() -> None:
    # layer 2: h2_t = W2 h2_{t-1} + U2 h1_t + b; loss on every step: L = sum_t sum_b v . h2_t
    # dL/dh2_t = v + W2^T dL/dh2_{t+1};  dL/dh1_t = U2^T dL/dh2_t + W1^T dL/dh1_{t+1}
    torch.manual_seed(1)
    steps, hidden = 6, 2
    w1, w2 = torch.rand(hidden, hidden) * 0.5, torch.rand(hidden, hidden) * 0.5
    layer = _linear_relu_rnn([w1, w2], hidden, input_size=1)
    u2 = layer.weight_ih_l1.detach().double()
    v = torch.tensor([0.7, 1.3])
    flow = gradient_flow(layer, torch.rand(steps, 3, 1), lambda out: (out * v).sum())
    g2 = [torch.zeros(hidden, dtype=torch.float64)] * (steps + 1)
    g1 = [torch.zeros(hidden, dtype=torch.float64)] * (steps + 1)
    for t in range(steps - 1, -1, -1):
        g2[t] = v.double() + w2.double().t().mv(g2[t + 1])
        g1[t] = u2.t().mv(g2[t]) + w1.double().t().mv(g1[t + 1])
    assert flow.rows == ("l0", "l1")
    torch.testing.assert_close(flow.hidden[1], torch.stack([g.norm() for g in g2[:steps]]))
    torch.testing.assert_close(flow.hidden[0], torch.stack([g.norm() for g in g1[:steps]]))


def test_norms_are_per_sequence_then_averaged() -> None:
    # L = sum_b c_b h_T^b with h scalar: ||dL/dh_T^b|| = |c_b|, averaged over the batch
    layer = _linear_relu_rnn([torch.tensor([[0.5]])], hidden=1, input_size=1)
    x = torch.rand(3, 2, 1) + 0.1
    scale = torch.tensor([[1.0], [3.0]])
    flow = gradient_flow(layer, x, lambda out: (out[-1] * scale).sum())
    assert math.isclose(float(flow.hidden[0, -1]), 2.0)
    assert math.isclose(float(flow.hidden[0, 0]), 0.5)


def test_tanh_rnn_vanishes_more_than_lstm_and_gru_at_init() -> None:
    torch.manual_seed(0)
    x, y = adding_problem(16, 60, seed=0)
    ratios = {}
    for name, layer in {
        "rnn": rnnlab.RNN(2, 32, batch_first=True),
        "lstm": rnnlab.LSTM(2, 32, batch_first=True, forget_bias=1.0),
    }.items():
        head = torch.nn.Linear(32, 1)
        flow = gradient_flow(layer, x, lambda out, head=head: ((head(out[:, -1]) - y) ** 2).mean())
        ratios[name] = flow.ratio()
        assert flow.steps == 60 and (flow.cell is not None) == (name == "lstm")
    assert 0 < ratios["rnn"] < ratios["lstm"] < 1


def test_reverse_rows_count_from_the_end_and_loss_on_first_step() -> None:
    torch.manual_seed(0)
    gru = rnnlab.GRU(2, 4, bidirectional=True)
    flow = gradient_flow(gru, torch.randn(8, 3, 2), lambda out: out[0].sum())
    # the loss reads step 1 only: forward row's h_1 gets the gradient, h_T none
    assert flow.hidden[0, -1] == 0 and flow.hidden[0, 0] > 0
    assert math.isinf(flow.ratio("l0"))
    # the reverse row reaches step 1 last: its "first" state is h_T
    assert flow.reverse == (False, True)
    assert 0 < flow.ratio("l0_reverse") < 1
    with pytest.raises(ValueError, match="unknown row"):
        flow.ratio("l3")


def test_states_api_and_parameters_grad_untouched() -> None:
    torch.manual_seed(0)
    lstm = rnnlab.LSTM(2, 4)
    tr = trace(lstm, torch.randn(5, 2, 2))
    loss = tr.output[-1].pow(2).sum()
    flow = gradient_flow_of_states(loss, tr.hidden, tr.cell)
    assert flow.cell is not None and flow.cell.shape == (1, 5)
    assert all(p.grad is None for p in lstm.parameters())
    direct = gradient_norms(loss, [tr.hidden["l0"]])
    torch.testing.assert_close(direct, flow.hidden)
    with pytest.raises(ValueError, match="scalar"):
        gradient_flow(lstm, torch.randn(5, 2, 2), lambda out: out.sum(-1))
    assert set(flow.to_dict()) >= {"rows", "hidden", "cell", "ratios", "loss"}
