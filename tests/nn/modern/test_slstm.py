"""sLSTM: the hand-written BPTT against the plain-autograd cell, gradcheck, lengths, step."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.nn import native
from rnnlab.nn.modern import slstm_bptt
from rnnlab.nn.modern.slstm import SLSTM, SLSTMCell, slstm_step

needs_native = pytest.mark.skipif(
    slstm_bptt.native_ops() is None, reason=f"native sLSTM {slstm_bptt.native_status()}"
)


def _reference(layer: SLSTM, x: torch.Tensor, hx: tuple[torch.Tensor, ...]) -> tuple:
    """The layer's forward direction of a one-layer stack, step by step through the cell."""
    state = tuple(s[0] for s in hx)
    outputs = []
    for t in range(x.shape[0]):
        h, state = slstm_step(
            x[t],
            state,
            layer.weight_ih_l0,
            layer.weight_hh_l0,
            layer.bias_l0,
            layer.forget_gate == "exp",
        )
        outputs.append(h)
    return torch.stack(outputs), state


def _random_state(layer: SLSTM, batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    h, c, n, m = (torch.randn(s.shape, dtype=dtype) for s in layer.init_state(batch))
    return h, c, n.abs() + 0.5, m  # a normalizer is positive


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
@pytest.mark.parametrize("heads", [1, 2])
def test_fused_matches_cell_loop(forget_gate: str, heads: int) -> None:
    torch.manual_seed(0)
    layer = SLSTM(3, 4, num_heads=heads, forget_gate=forget_gate, bias=heads == 1)
    x = torch.randn(9, 2, 3, requires_grad=True)
    hx = _random_state(layer, 2, torch.float32)
    out, state = layer(x, hx)
    ref_out, ref_state = _reference(layer, x, hx)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(state, ref_state, strict=True):
        torch.testing.assert_close(ours[0], theirs, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(out)
    params = [x, *layer.parameters()]
    ours_grad = torch.autograd.grad((out * weights).sum() + sum(s.sum() for s in state), params)
    loss = (ref_out * weights).sum() + sum(s.sum() for s in ref_state)
    for a, b in zip(ours_grad, torch.autograd.grad(loss, params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_gradcheck_cell(forget_gate: str) -> None:
    torch.manual_seed(0)
    cell = SLSTMCell(3, 4, num_heads=2, forget_gate=forget_gate).double()
    x = torch.randn(2, 3, dtype=torch.double, requires_grad=True)
    h, c, n, m = (torch.randn(2, 4, dtype=torch.double) for _ in range(4))
    state = [s.requires_grad_() for s in (h, c, n.abs() + 0.5, m)]
    assert torch.autograd.gradcheck(lambda x, *s: cell(x, tuple(s))[1], (x, *state))


@pytest.mark.parametrize(
    "options",
    [
        {"forget_gate": "sigmoid", "num_heads": 2},
        {"forget_gate": "exp", "num_layers": 2, "bidirectional": True, "bias": False},
    ],
)
def test_gradcheck_layer(options: dict) -> None:
    torch.manual_seed(0)
    layer = SLSTM(2, 2, **options).double()
    x = torch.randn(4, 2, 2, dtype=torch.double, requires_grad=True)
    hx = [s.requires_grad_() for s in _random_state(layer, 2, torch.double)]

    def run(x: torch.Tensor, *hx: torch.Tensor) -> list[torch.Tensor]:
        out, state = layer(x, tuple(hx), lengths=[4, 2])
        return [out, *state]

    assert torch.autograd.gradcheck(run, (x, *hx), fast_mode=True)


def test_lengths_match_each_sequence_alone() -> None:
    torch.manual_seed(0)
    layer = SLSTM(3, 4, num_layers=2, bidirectional=True, num_heads=2, batch_first=True)
    x = torch.randn(3, 7, 3)
    lengths = [7, 3, 5]
    out, state = layer(x, lengths=lengths)
    for b, length in enumerate(lengths):
        alone, alone_state = layer(x[b : b + 1, :length])
        torch.testing.assert_close(out[b : b + 1, :length], alone, rtol=1e-5, atol=1e-6)
        assert torch.all(out[b, length:] == 0)
        for s, a in zip(state, alone_state, strict=True):
            torch.testing.assert_close(s[:, b : b + 1], a, rtol=1e-5, atol=1e-6)


def test_packed_sequence_matches_lengths() -> None:
    torch.manual_seed(0)
    layer = SLSTM(3, 4, bidirectional=True)
    x = torch.randn(6, 3, 3)
    lengths = torch.tensor([4, 6, 2])
    out, state = layer(x, lengths=lengths)
    packed_out, packed_state = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
    padded, _ = pad_packed_sequence(packed_out, total_length=6)
    torch.testing.assert_close(padded, out)
    for a, b in zip(packed_state, state, strict=True):
        torch.testing.assert_close(a, b)


def test_step_matches_forward_and_unbatched() -> None:
    torch.manual_seed(0)
    layer = SLSTM(3, 4, num_layers=2, num_heads=2)
    x = torch.randn(5, 2, 3)
    out, state = layer(x)
    step_state = None
    for t in range(5):
        y, step_state = layer.step(x[t], step_state)
        torch.testing.assert_close(y, out[t], rtol=1e-5, atol=1e-6)
    assert step_state is not None
    for a, b in zip(step_state, state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    single, single_state = layer(x[:, 0])
    torch.testing.assert_close(single, out[:, 0], rtol=1e-5, atol=1e-6)
    assert single_state[0].shape == (2, 4)


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="multiple of num_heads"):
        SLSTM(3, 5, num_heads=2)
    with pytest.raises(ValueError, match="forget_gate"):
        SLSTM(3, 4, forget_gate="tanh")
    layer = SLSTM(3, 4)
    with pytest.raises(ValueError, match="hx must be a tuple of 4"):
        layer(torch.randn(2, 1, 3), torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="bidirectional"):
        SLSTM(3, 4, bidirectional=True).step(torch.randn(1, 3))
    assert "hand-written backward" in layer.explain()


def _run_and_grads(
    layer: SLSTM,
    x: torch.Tensor,
    hx: tuple[torch.Tensor, ...],
    lengths: list[int] | None,
    python: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    with native.python_loops() if python else torch.enable_grad():
        out, state = layer(x, hx, lengths=lengths)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        loss = (out * weights).sum() + sum((s * (k + 1)).sum() for k, s in enumerate(state))
        grads = torch.autograd.grad(loss, [x, *hx, *layer.parameters()])
    return out, state, grads


@needs_native
@pytest.mark.parametrize(
    ("options", "batch", "lengths"),
    [
        ({"num_heads": 4}, 2, None),
        ({"num_heads": 2, "forget_gate": "exp"}, 6, [5, 9, 3, 9, 1, 7]),  # ATen bmm path
        ({"num_layers": 2, "bidirectional": True, "num_heads": 2}, 3, [9, 4, 6]),
        ({"num_heads": 1, "bias": False, "batch_first": False}, 5, None),
        ({"num_layers": 2, "bidirectional": True, "forget_gate": "exp"}, 1, None),  # hand loop
    ],
)
def test_native_matches_torchscript_loops(
    options: dict, batch: int, lengths: list[int] | None
) -> None:
    torch.manual_seed(0)
    layer = SLSTM(5, 8, **options)
    rows = layer.num_layers * (2 if layer.bidirectional else 1)
    x = torch.randn(9, batch, 5, requires_grad=True)
    h, c, n, m = (torch.randn(rows, batch, 8) for _ in range(4))
    hx = tuple(s.requires_grad_() for s in (h, c, n.abs() + 0.5, m))
    ours = _run_and_grads(layer, x, hx, lengths, python=False)
    theirs = _run_and_grads(layer, x, hx, lengths, python=True)
    torch.testing.assert_close(ours[0], theirs[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(ours[1], theirs[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(ours[2], theirs[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert "native" in layer.explain()


@needs_native
@pytest.mark.parametrize(
    ("options", "batch"),
    [
        ({"forget_gate": "sigmoid", "num_heads": 2}, 1),  # hand-loop matmul
        ({"forget_gate": "exp", "bidirectional": True, "num_heads": 2}, 6),
    ],
)
def test_gradcheck_native(options: dict, batch: int) -> None:
    torch.manual_seed(0)
    layer = SLSTM(2, 4, **options).double()
    assert slstm_bptt.use_native(torch.zeros(1, dtype=torch.double))
    x = torch.randn(4, batch, 2, dtype=torch.double, requires_grad=True)
    hx = [s.requires_grad_() for s in _random_state(layer, batch, torch.double)]
    lengths = [4, 2, 3, 1, 4, 2][:batch]

    def run(x: torch.Tensor, *hx: torch.Tensor) -> list[torch.Tensor]:
        out, state = layer(x, tuple(hx), lengths=lengths)
        return [out, *state]

    assert torch.autograd.gradcheck(run, (x, *hx), fast_mode=True)
