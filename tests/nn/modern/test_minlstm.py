"""MinLSTM: parallel form against the sequential form, gradcheck, lengths, packing, step."""

from __future__ import annotations

import pytest
import torch
from tests.nn.modern.modern_checks import (
    OPTIONS,
    check_against_sequential,
    check_gradcheck,
    parallel,
)
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.nn import native
from rnnlab.nn.modern import MinLSTM, scan


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize(("use_lengths", "use_hx"), [(False, False), (False, True), (True, True)])
def test_parallel_equals_sequential(options: dict, use_lengths: bool, use_hx: bool) -> None:
    check_against_sequential(MinLSTM, options, use_lengths, use_hx)


def test_gradcheck_float64() -> None:
    check_gradcheck(MinLSTM)


def test_python_fallback_gradcheck_float64() -> None:
    with native.python_loops():
        check_gradcheck(MinLSTM)


def test_equations() -> None:
    """One step by hand: h = f' h0 + i' g(p_h), f' = f / (f + i)."""
    layer = MinLSTM(2, 3)
    x, h0 = torch.randn(1, 1, 2), torch.randn(1, 1, 3)
    pre = torch.nn.functional.linear(x[0], layer.weight_ih_l0, layer.bias_ih_l0)
    p_f, p_i, p_h = pre.chunk(3, -1)
    f, i = torch.sigmoid(p_f), torch.sigmoid(p_i)
    cand = torch.where(p_h >= 0, p_h + 0.5, torch.sigmoid(p_h))
    out, _ = layer(x, h0)
    torch.testing.assert_close(out[0], f / (f + i) * h0[0] + i / (f + i) * cand)


@pytest.mark.parametrize("python", [False, True])
def test_extreme_gates_stay_finite(python: bool) -> None:
    """Gates saturated far past float's exp range: finite outputs and gradients."""
    layer = MinLSTM(1, 2)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(
            torch.tensor([[300.0], [-300.0], [-300.0], [-300.0], [1.0], [1.0]])
        )
        layer.bias_ih_l0.zero_()
    x = torch.ones(5, 1, 1, requires_grad=True)
    with native.python_loops() if python else torch.enable_grad():
        out, h_n = layer(x)
        (out.sum() + h_n.sum()).backward()
    assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(x.grad).all())
    assert all(bool(torch.isfinite(p.grad).all()) for p in layer.parameters())


def test_step_matches_forward_and_streams() -> None:
    torch.manual_seed(0)
    layer = MinLSTM(4, 5, num_layers=2, batch_first=True)
    x = torch.randn(3, 9, 4)
    out, h_n = layer(x)
    h, ys = None, []
    for t in range(9):
        y, h = layer.step(x[:, t], h)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_n, atol=1e-5, rtol=1e-5)
    # continuing a sequence from h_n equals running it whole
    first, h_mid = layer(x[:, :4])
    rest, h_end = layer(x[:, 4:], h_mid)
    torch.testing.assert_close(torch.cat([first, rest], 1), out, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(h_end, h_n, atol=1e-6, rtol=1e-6)


def test_packed_sequence_equals_padded_with_lengths() -> None:
    torch.manual_seed(0)
    layer = MinLSTM(4, 5, num_layers=2, bidirectional=True)
    x = torch.randn(6, 3, 4)
    hx = torch.randn(4, 3, 5)
    lengths = [3, 6, 2]
    out, h_n = layer(x, hx, lengths)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    packed_out, packed_h = layer(packed, hx)
    padded, _ = pad_packed_sequence(packed_out, total_length=6)
    torch.testing.assert_close(padded, out)
    torch.testing.assert_close(packed_h, h_n)


def test_padded_steps_are_zero_and_unbatched_works() -> None:
    layer = MinLSTM(4, 5, bidirectional=True)
    out, _ = parallel(layer, torch.randn(6, 2, 4), None, [6, 2])
    assert bool((out[2:, 1] == 0).all())
    single, h = layer(torch.randn(6, 4))
    assert tuple(single.shape) == (6, 10) and tuple(h.shape) == (2, 5)


@pytest.mark.skipif(not scan.native_ops(), reason="native scan not built")
def test_native_equals_python_fallback_float32() -> None:
    torch.manual_seed(0)
    layer = MinLSTM(4, 8, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(5, 30, 4, requires_grad=True)
    out, h_n = layer(x, lengths=[30, 11, 1, 29, 17])
    with native.python_loops():
        ref_out, ref_h = layer(x, lengths=[30, 11, 1, 29, 17])
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_n, ref_h, atol=1e-5, rtol=1e-5)
    g = torch.autograd.grad(out.square().sum() + h_n.sum(), [x, *layer.parameters()])
    r = torch.autograd.grad(ref_out.square().sum() + ref_h.sum(), [x, *layer.parameters()])
    for a, b in zip(g, r, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)
    assert "native fused scan" in layer.explain()
    with native.python_loops():
        assert "PyTorch scan loop" in layer.explain()


def test_dropout_between_layers_only_in_training() -> None:
    torch.manual_seed(0)
    layer = MinLSTM(4, 5, num_layers=2, dropout=0.5)
    x = torch.randn(6, 2, 4)
    layer.eval()
    a, _ = layer(x)
    b, _ = layer(x)
    torch.testing.assert_close(a, b)
    layer.train()
    c, _ = layer(x)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m(torch.randn(3, 2, 7)), "input_size=4"),
        (lambda m: m(torch.randn(3, 2, 4), torch.zeros(2, 2, 5)), "h_0 must have shape"),
        (lambda m: m(torch.randn(3, 2, 4), lengths=[4, 1]), "out of range"),
        (lambda m: MinLSTM(4, 5, bidirectional=True).step(torch.randn(2, 4)), "bidirectional"),
        (lambda m: MinLSTM(4, 0), "hidden_size"),
        (lambda m: MinLSTM(4, 5, dropout=1.5), "dropout"),
    ],
)
def test_bad_input_one_clear_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(MinLSTM(4, 5))
