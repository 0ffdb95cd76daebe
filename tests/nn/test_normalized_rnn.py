"""The layer-normalized simple RNN as one node keeping ``LN_hh``'s inputs (``normalized_rnn``).

- float64 ``gradcheck`` over every option (zoneout mask, lengths, reverse, relu, recurrent
  dropout, DropConnect);
- float32 parity (outputs, final state, every gradient) with the two-node composition it
  replaces (``normalized_projection`` then ``fused_bptt.run_direction``);
- what it keeps: one ``(T, B, H)`` float plane (``LN_hh``'s inputs), not the outputs;
- ``rnnlab.RNN(layer_norm=True)`` routes to it in training and still matches the reference
  loop, and falls back (still matching) under eval-mode zoneout.

Each test runs through the native loops and through the Python loops.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Any

import pytest
import torch
from tests.nn.helpers import assert_as_accurate_as
from torch import Tensor
from torch.autograd import gradcheck

import rnnlab
from rnnlab.nn import force_fused_bptt, force_loop, native, normalized_rnn, regularizers
from rnnlab.nn.fused_bptt import run_direction
from rnnlab.nn.input_norm import normalized_projection
from rnnlab.nn.loop_backends import time_loops

STEPS, BATCH, INPUT, HIDDEN = 5, 3, 4, 3
F64 = torch.float64
OPTIONS = list(itertools.product([False, True], repeat=5))  # zone, lengths, reverse, relu, rec


@pytest.fixture(autouse=True, params=["native", "python"])
def loops(request: pytest.FixtureRequest) -> Any:
    if request.param == "python":
        with native.python_loops():
            yield request.param
        return
    if not native.built():
        pytest.skip(f"native loops {native.status()}")
    yield request.param


def _inputs(dtype: torch.dtype, seed: int) -> list[Tensor]:
    """``x, w_ih, in_gain, in_shift, b_ih, h0, w_hh, ln_gain, ln_shift, b_hh``."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int, scale: float = 1.0) -> Tensor:
        return (torch.randn(*shape, generator=gen, dtype=dtype) * scale).requires_grad_()

    def gain() -> Tensor:
        return (randn(HIDDEN, scale=0.3).detach() + 1).requires_grad_()

    return [
        randn(STEPS, BATCH, INPUT),
        randn(HIDDEN, INPUT, scale=0.5),
        gain(),
        randn(HIDDEN),
        randn(HIDDEN),
        randn(BATCH, HIDDEN),
        randn(HIDDEN, HIDDEN, scale=0.5),
        gain(),
        randn(HIDDEN),
        randn(HIDDEN),
    ]


def _masks(zone: bool, lengths: bool, rec: bool, dtype: torch.dtype, seed: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed + 1)
    masks: dict[str, Any] = {}
    if zone:
        masks["zone"] = torch.rand(STEPS, BATCH, HIDDEN, generator=gen) < 0.3
    if lengths:
        masks["valid"] = (torch.arange(STEPS)[:, None] < torch.tensor([5, 2, 1])).unsqueeze(-1)
    if rec:
        keep = torch.rand(BATCH, HIDDEN, generator=gen) < 0.7
        masks["rec_mask"] = keep.to(dtype) / 0.7
    return masks


def _new(args: list[Tensor], masks: dict[str, Any], **options: Any) -> tuple[Tensor, ...]:
    x, w_ih, g_in, s_in, b_ih, h0, w_hh, g, s, b_hh = args
    out, h = normalized_rnn.normalized_rnn(
        x, w_ih, (g_in, s_in), h0, w_hh, b_hh, (g, s), b_ih=b_ih, **masks, **options
    )
    return out, h


def _composed(args: list[Tensor], masks: dict[str, Any], **options: Any) -> tuple[Tensor, ...]:
    x, w_ih, g_in, s_in, b_ih, h0, w_hh, g, s, b_hh = args
    gx = normalized_projection(x, w_ih, g_in, s_in, b_ih)
    zone = masks.get("zone")
    rest = {k: v for k, v in masks.items() if k != "zone"}
    out, h, _ = run_direction(
        "rnn", gx, h0, None, w_hh, b_hh, ln_hh=(g, s), zone_h=zone, **rest, **options
    )
    return out, h


def _options(reverse: bool, relu: bool) -> dict[str, Any]:
    return {"reverse": reverse, "nonlinearity": "relu" if relu else "tanh"}


@pytest.mark.parametrize(("zone", "lengths", "reverse", "relu", "rec"), OPTIONS)
def test_gradcheck_float64(zone: bool, lengths: bool, reverse: bool, relu: bool, rec: bool) -> None:
    seed = zlib.crc32(repr((zone, lengths, reverse, relu, rec)).encode()) % 1000
    args = _inputs(F64, seed)
    masks = _masks(zone, lengths, rec, F64, seed)
    flat = [a for a in args if a is not None]

    def function(*inputs: Tensor) -> tuple[Tensor, ...]:
        return _new(list(inputs), masks, **_options(reverse, relu))

    assert gradcheck(function, tuple(flat), atol=1e-6)


def test_gradcheck_with_drop_connect() -> None:
    args = _inputs(F64, 7)
    keep = torch.rand(HIDDEN, HIDDEN, generator=torch.Generator().manual_seed(3)) < 0.6
    masks = _masks(True, False, True, F64, 7)

    def function(*inputs: Tensor) -> tuple[Tensor, ...]:
        return _new(list(inputs), masks, w_keep=keep, weight_drop=0.4)

    assert gradcheck(function, tuple(args), atol=1e-6)


@pytest.mark.parametrize(("zone", "lengths", "reverse", "relu", "rec"), OPTIONS)
def test_as_accurate_as_the_two_node_composition_in_float32(
    zone: bool, lengths: bool, reverse: bool, relu: bool, rec: bool
) -> None:
    seed = zlib.crc32(repr(("f32", zone, lengths, reverse, relu, rec)).encode()) % 1000
    masks = _masks(zone, lengths, rec, torch.float32, seed)
    masks64 = _masks(zone, lengths, rec, F64, seed)
    options = _options(reverse, relu)
    assert_as_accurate_as(_new, _composed, _inputs(F64, seed), (masks, masks64), **options)


def test_seeded_drop_connect_as_accurate_as_the_composition() -> None:
    inputs = _inputs(F64, 11)
    torch.manual_seed(12)
    keep = regularizers.drop_connect_keep(inputs[6], 0.3)
    assert_as_accurate_as(_new, _composed, inputs, ({}, {}), w_keep=keep, weight_drop=0.3)


def test_keeps_the_norm_inputs_not_the_outputs() -> None:
    """One (T, B, H) float plane kept, and it is not the output: 1x torch.nn's memory."""
    steps, batch, hidden = 12, 5, 16
    x = torch.randn(steps, batch, 8, requires_grad=True)
    w_ih = torch.randn(hidden, 8, requires_grad=True)
    w_hh = torch.randn(hidden, hidden, requires_grad=True)
    norm = (torch.ones(hidden, requires_grad=True), torch.zeros(hidden, requires_grad=True))
    kept: list[Tensor] = []

    def pack(tensor: Tensor) -> Tensor:
        kept.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = normalized_rnn.normalized_rnn(
            x, w_ih, norm, torch.zeros(batch, hidden), w_hh, None, norm
        )
    planes = [t for t in kept if t.shape == (steps, batch, hidden) and t.is_floating_point()]
    assert len(planes) == 1
    assert planes[0].data_ptr() != out.data_ptr()


def test_rejects_bad_arguments() -> None:
    args = _inputs(torch.float32, 0)
    with pytest.raises(ValueError, match="bool mask"):
        _new(args, {"zone": torch.full((STEPS, BATCH, HIDDEN), 0.3)})
    with pytest.raises(ValueError, match="nonlinearity"):
        _new(args, {}, nonlinearity="sigmoid")
    x, w_ih, _, _, _, h0, w_hh, _, _, _ = args
    with pytest.raises(ValueError, match="ln_hh"):
        normalized_rnn.normalized_rnn(x, w_ih, None, h0, w_hh, None, None)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_layer_routes_here_in_training_and_matches_the_loop(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = normalized_rnn._NormalizedRNNFunction.apply

    def spy(*args: Any) -> Any:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(normalized_rnn._NormalizedRNNFunction, "apply", spy)
    torch.manual_seed(4)
    layer = rnnlab.RNN(
        4, 6, num_layers=2, bidirectional=True, layer_norm=True, zoneout=0.2,
        recurrent_dropout=0.2, weight_drop=0.3,
    )  # fmt: skip
    layer.train(mode == "train")
    x = torch.randn(7, 3, 4, requires_grad=True)
    results = []
    for context in (force_fused_bptt, force_loop):
        torch.manual_seed(5)
        with context():
            out, h = layer(x)
        grads = torch.autograd.grad((out * torch.linspace(-1, 1, 12)).sum() + h.sum(), x)
        results.append((out, h, grads[0]))
    assert (len(calls) > 0) == (mode == "train")
    for ours, reference in zip(results[0], results[1], strict=True):  # 1e-5 of the scale
        scale = float(reference.detach().abs().max())
        torch.testing.assert_close(ours, reference, atol=1e-5 * scale, rtol=1e-5)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("zoned", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_recurrent_inputs_are_the_masked_previous_states(
    reverse: bool, zoned: bool, masked: bool
) -> None:
    gen = torch.Generator().manual_seed(9)
    acts, h0 = torch.randn(6, 4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    zone = torch.rand(6, 4, 5, generator=gen) < 0.4 if zoned else None
    mask = (torch.rand(4, 5, generator=gen) < 0.7) / 0.7 if masked else None
    h_rec = torch.full_like(acts, float("nan"))
    time_loops(native.built() and not native.python_forced()).recurrent_inputs(
        acts, h0, zone, mask, reverse, h_rec
    )
    expected, state = torch.empty_like(acts), h0  # h_t by its definition, step by step
    for t in range(5, -1, -1) if reverse else range(6):
        expected[t] = state if mask is None else state * mask
        state = acts[t] if zone is None else torch.where(zone[t], state, acts[t])
    assert torch.equal(h_rec, expected)
