"""mLSTM: parallel form against recurrent form, gradcheck, lengths, packed input, step."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnlab.nn.modern.mlstm import MLSTM, MLSTMCell


def _random_state(layer: MLSTM, batch: int, dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.randn(s.shape, dtype=dtype) for s in layer.init_state(batch)]


def _run_both(layer: MLSTM, x: torch.Tensor | PackedSequence, call: dict) -> dict[str, tuple]:
    """Outputs, states and gradients (input, initial state, parameters) of both forms."""
    found = {}
    for form in ("parallel", "recurrent"):
        layer.form = form
        leaf = x.data if isinstance(x, PackedSequence) else x
        inputs = [leaf, *call.get("hx", ())]
        out, state = layer(x, **call)
        data = out.data if isinstance(out, PackedSequence) else out
        torch.manual_seed(1)
        loss = (data * torch.randn_like(data)).sum() + sum(
            (s * torch.randn_like(s)).sum() for s in state
        )
        grads = torch.autograd.grad(
            loss, [*inputs, *layer.parameters()], allow_unused=True, materialize_grads=True
        )
        found[form] = (data, state, grads)
    return found


CASES = [
    {},
    {"bias": False, "num_heads": 1},
    {"num_layers": 2, "bidirectional": True},
    {"batch_first": True, "chunk_size": None},
    {"forget_gate": "exp", "chunk_size": 3},
    {"num_layers": 2, "chunk_size": 5, "dropout": 0.0},
]


@pytest.mark.parametrize("options", CASES)
@pytest.mark.parametrize("call", ["plain", "lengths", "packed", "hx"])
def test_parallel_matches_recurrent(options: dict, call: str) -> None:
    torch.manual_seed(0)
    kwargs = {"num_heads": 2, "chunk_size": 4, **options}
    layer = MLSTM(3, 8, **kwargs)
    steps, batch = 11, 3
    x = torch.randn((batch, steps, 3) if layer.batch_first else (steps, batch, 3))
    x.requires_grad_()
    arguments: dict = {}
    if call == "lengths":
        arguments["lengths"] = [11, 4, 7]
    elif call == "hx":
        arguments["hx"] = tuple(s.requires_grad_() for s in _random_state(layer, batch, x.dtype))
    elif call == "packed":
        if layer.batch_first:
            pytest.skip("packed input is time-major here")
        arguments = {}
        x = x.detach()
        packed = pack_padded_sequence(x, torch.tensor([11, 4, 7]), enforce_sorted=False)
        packed.data.requires_grad_()
        found = _run_both(layer, packed, arguments)
        _assert_agree(found)
        return
    _assert_agree(_run_both(layer, x, arguments))


def _assert_agree(found: dict[str, tuple]) -> None:
    (p_out, p_state, p_grads), (r_out, r_state, r_grads) = found["parallel"], found["recurrent"]
    torch.testing.assert_close(p_out, r_out, rtol=1e-5, atol=1e-5)
    for a, b in zip(p_state, r_state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(p_grads, r_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_gradcheck_cell() -> None:
    torch.manual_seed(0)
    cell = MLSTMCell(3, 4, num_heads=2).double()
    x = torch.randn(2, 3, dtype=torch.double, requires_grad=True)
    state = [
        s.requires_grad_()
        for s in (torch.randn(s.shape, dtype=torch.double) for s in cell.init_state(2))
    ]
    assert torch.autograd.gradcheck(
        lambda x, *s: [cell(x, tuple(s))[0], *cell(x, tuple(s))[1]], (x, *state)
    )


@pytest.mark.parametrize("form", ["parallel", "recurrent"])
def test_gradcheck_layer(form: str) -> None:
    torch.manual_seed(0)
    layer = MLSTM(2, 4, num_heads=2, bidirectional=True, form=form, chunk_size=2).double()
    x = torch.randn(4, 2, 2, dtype=torch.double, requires_grad=True)
    hx = [s.requires_grad_() for s in _random_state(layer, 2, torch.double)]

    def run(x: torch.Tensor, *hx: torch.Tensor) -> list[torch.Tensor]:
        out, state = layer(x, tuple(hx), lengths=[4, 2])
        return [out, *state]

    assert torch.autograd.gradcheck(run, (x, *hx), fast_mode=True)


@pytest.mark.parametrize("form", ["parallel", "recurrent"])
def test_lengths_match_each_sequence_alone(form: str) -> None:
    torch.manual_seed(0)
    layer = MLSTM(3, 4, num_layers=2, bidirectional=True, num_heads=2, form=form, chunk_size=3)
    x = torch.randn(7, 3, 3)
    lengths = [7, 3, 5]
    out, state = layer(x, lengths=lengths)
    for b, length in enumerate(lengths):
        alone, alone_state = layer(x[:length, b : b + 1])
        torch.testing.assert_close(out[:length, b : b + 1], alone, rtol=1e-5, atol=1e-6)
        assert torch.all(out[length:, b] == 0)
        for s, a in zip(state, alone_state, strict=True):
            torch.testing.assert_close(s[:, b : b + 1], a, rtol=1e-5, atol=1e-6)


def test_packed_output_matches_padded() -> None:
    torch.manual_seed(0)
    layer = MLSTM(3, 4, bidirectional=True)
    x = torch.randn(6, 3, 3)
    lengths = torch.tensor([4, 6, 2])
    out, state = layer(x, lengths=lengths)
    packed_out, packed_state = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
    padded, _ = pad_packed_sequence(packed_out, total_length=6)
    torch.testing.assert_close(padded, out)
    for a, b in zip(packed_state, state, strict=True):
        torch.testing.assert_close(a, b)


def test_step_continues_a_parallel_forward() -> None:
    """Train in parallel, stream recurrently: step() from forward's state gives the rest."""
    torch.manual_seed(0)
    layer = MLSTM(3, 8, num_layers=2, num_heads=2, chunk_size=4)
    x = torch.randn(10, 2, 3)
    out, state = layer(x)
    _, prefix_state = layer(x[:6])
    streamed = prefix_state
    for t in range(6, 10):
        y, streamed = layer.step(x[t], streamed)
        torch.testing.assert_close(y, out[t], rtol=1e-5, atol=1e-6)
    for a, b in zip(streamed, state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state[0][-1], out[-1])  # state[0] is h_n, the last output
    single, single_state = layer(x[:, 0])
    torch.testing.assert_close(single, out[:, 0], rtol=1e-5, atol=1e-6)
    assert single_state[1].shape == (2, 2, 4, 4)


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="form must be one of"):
        MLSTM(3, 4, form="chunked")
    with pytest.raises(ValueError, match="chunk_size"):
        MLSTM(3, 4, chunk_size=0)
    layer = MLSTM(3, 4, num_heads=2)
    with pytest.raises(ValueError, match=r"hx C must have shape \(1, 1, 2, 2, 2\)"):
        layer(
            torch.randn(2, 1, 3),
            (
                torch.zeros(1, 1, 4),
                torch.zeros(1, 1, 4, 4),
                torch.zeros(1, 1, 2, 2),
                torch.zeros(1, 1, 2),
            ),
        )
    with pytest.raises(ValueError, match="hx must be a tuple of 4 tensors"):
        layer(torch.randn(2, 1, 3), (torch.zeros(1, 1, 2, 2, 2),))
    assert "parallel form" in layer.explain()
    layer.form = "recurrent"
    assert "recurrent form" in layer.explain()
