"""IndRNN: parallel (fused) form against the sequential form, gradcheck, constraint, step."""

from __future__ import annotations

import pytest
import torch
from tests.nn.modern.modern_checks import OPTIONS, check_against_sequential, check_gradcheck
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.nn import native
from rnnlab.nn.modern import IndRNN, scan


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize(("use_lengths", "use_hx"), [(False, False), (False, True), (True, True)])
def test_parallel_equals_sequential(options: dict, use_lengths: bool, use_hx: bool) -> None:
    check_against_sequential(IndRNN, options, use_lengths, use_hx)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_tanh_and_relu_against_sequential(activation: str) -> None:
    options = {"num_layers": 2, "bidirectional": True, "batch_first": True}
    check_against_sequential(IndRNN, options, True, True, {"activation": activation})


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("python", [False, True])
def test_gradcheck_float64(activation: str, python: bool) -> None:
    with native.python_loops() if python else torch.enable_grad():
        check_gradcheck(IndRNN, {"activation": activation})


def test_equations_and_recurrent_constraint() -> None:
    """h = relu(W x + b + clamp(u) h0); |u| past recurrent_max acts as the bound."""
    layer = IndRNN(2, 3, recurrent_max=0.5)
    with torch.no_grad():
        layer.weight_hh_l0.copy_(torch.tensor([2.0, -3.0, 0.25]))
        layer.bias_ih_l0.fill_(2.0)  # every unit active (relu' = 1): u's gradient is h0
    x, h0 = torch.randn(1, 1, 2), torch.rand(1, 1, 3)
    pre = torch.nn.functional.linear(x[0], layer.weight_ih_l0, layer.bias_ih_l0)
    out, _ = layer(x, h0)
    torch.testing.assert_close(out[0], torch.relu(pre + torch.tensor([0.5, -0.5, 0.25]) * h0[0]))
    out.sum().backward()
    grad = layer.weight_hh_l0.grad
    assert grad is not None and grad[0] == 0 and grad[1] == 0 and grad[2] != 0
    free = IndRNN(2, 3, recurrent_max=None)
    with torch.no_grad():
        free.weight_hh_l0.fill_(2.0)
    assert bool((free.recurrent_weight("_l0") == 2.0).all())
    assert bool((IndRNN(2, 64, recurrent_max=0.3).weight_hh_l0.abs() <= 0.3).all())


def test_step_matches_forward() -> None:
    torch.manual_seed(0)
    layer = IndRNN(4, 5, num_layers=2, activation="tanh")
    x = torch.randn(9, 3, 4)
    out, h_n = layer(x)
    h, ys = None, []
    for t in range(9):
        y, h = layer.step(x[t], h)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_n, atol=1e-5, rtol=1e-5)


def test_packed_sequence_equals_padded_with_lengths() -> None:
    torch.manual_seed(0)
    layer = IndRNN(4, 5, bidirectional=True, batch_first=True)
    x = torch.randn(3, 6, 4)
    lengths = [3, 6, 2]
    out, h_n = layer(x, lengths=lengths)
    packed_out, packed_h = layer(pack_padded_sequence(x, lengths, True, enforce_sorted=False))
    padded, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=6)
    torch.testing.assert_close(padded, out)
    torch.testing.assert_close(packed_h, h_n)


@pytest.mark.skipif(not scan.native_ops(), reason="native scan not built")
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_native_equals_python_fallback_float32(activation: str) -> None:
    torch.manual_seed(0)
    layer = IndRNN(4, 40, num_layers=2, bidirectional=True, activation=activation)
    x = torch.randn(25, 4, 4, requires_grad=True)
    lengths = [25, 3, 1, 17]
    out, h_n = layer(x, lengths=lengths)
    with native.python_loops():
        ref_out, ref_h = layer(x, lengths=lengths)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_n, ref_h, atol=1e-5, rtol=1e-5)
    g = torch.autograd.grad(out.square().sum() + h_n.sum(), [x, *layer.parameters()])
    r = torch.autograd.grad(ref_out.square().sum() + ref_h.sum(), [x, *layer.parameters()])
    for a, b in zip(g, r, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: IndRNN(4, 5, activation="sigmoid"), "activation must be one of"),
        (lambda: IndRNN(4, 5, recurrent_max=0), "recurrent_max must be"),
        (lambda: IndRNN(4, 5, num_layers=0), "num_layers"),
    ],
)
def test_bad_options_one_clear_error(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
