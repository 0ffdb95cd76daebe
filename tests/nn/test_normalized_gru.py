"""The layer-normalized GRU as one node keeping both layer norms' inputs (``normalized_gru``).

- float64 ``gradcheck`` over every option (zoneout mask or eval weight, lengths, reverse,
  recurrent dropout, DropConnect);
- float32 parity (outputs, final state, every gradient) with the two-node composition it
  replaces (autograd's input layer norm, then ``fused_bptt.run_direction``);
- what it keeps: two ``(T, B, 3H)`` planes (the layer norms' inputs) and the outputs, no gates;
- ``rnnlab.GRU(layer_norm=True)`` routes to it under autograd and matches the reference loop.

Each test runs through the native loops and through the Python loops.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from tests.nn.helpers import assert_as_accurate_as
from torch import Tensor
from torch.autograd import gradcheck

import rnnlab
from rnnlab.nn import force_fused_bptt, force_loop, native, normalized_gru, regularizers
from rnnlab.nn.fused_bptt import run_direction

STEPS, BATCH, INPUT, HIDDEN = 5, 3, 4, 3
WIDTH = 3 * HIDDEN
F64 = torch.float64
OPTIONS = list(
    itertools.product(["none", "mask", "eval"], [False, True], [False, True], [False, True])
)


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

    def randn(*shape: int, scale: float = 1.0, offset: float = 0.0) -> Tensor:
        return (torch.randn(*shape, generator=gen, dtype=dtype) * scale + offset).requires_grad_()

    return [
        randn(STEPS, BATCH, INPUT),
        randn(WIDTH, INPUT, scale=0.5),
        randn(WIDTH, scale=0.3, offset=1.0),
        randn(WIDTH),
        randn(WIDTH),
        randn(BATCH, HIDDEN),
        randn(WIDTH, HIDDEN, scale=0.5),
        randn(WIDTH, scale=0.3, offset=1.0),
        randn(WIDTH),
        randn(WIDTH),
    ]


def _masks(zone: str, lengths: bool, rec: bool, dtype: torch.dtype, seed: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed + 1)
    masks: dict[str, Any] = {}
    if zone == "mask":
        masks["zone"] = torch.rand(STEPS, BATCH, HIDDEN, generator=gen) < 0.3
    elif zone == "eval":
        masks["zone"] = torch.tensor(0.3, dtype=dtype).expand(STEPS, BATCH, HIDDEN)
    if lengths:
        masks["valid"] = (torch.arange(STEPS)[:, None] < torch.tensor([5, 2, 1])).unsqueeze(-1)
    if rec:
        keep = torch.rand(BATCH, HIDDEN, generator=gen) < 0.7
        masks["rec_mask"] = keep.to(dtype) / 0.7
    return masks


def _new(args: list[Tensor], masks: dict[str, Any], **options: Any) -> tuple[Tensor, ...]:
    x, w_ih, g_in, s_in, b_ih, h0, w_hh, g, s, b_hh = args
    out, h = normalized_gru.normalized_gru(
        x, w_ih, (g_in, s_in), h0, w_hh, b_hh, (g, s), b_ih=b_ih, **masks, **options
    )
    return out, h


def _composed(args: list[Tensor], masks: dict[str, Any], **options: Any) -> tuple[Tensor, ...]:
    x, w_ih, g_in, s_in, b_ih, h0, w_hh, g, s, b_hh = args
    gx = F.layer_norm(x @ w_ih.t(), (WIDTH,), g_in, s_in) + b_ih
    rest = {k: v for k, v in masks.items() if k != "zone"}
    out, h, _ = run_direction(
        "gru", gx, h0, None, w_hh, b_hh, ln_hh=(g, s), zone_h=masks.get("zone"), **rest, **options
    )
    return out, h


def _seed(*key: Any) -> int:
    return zlib.crc32(repr(key).encode()) % 1000


@pytest.mark.parametrize(("zone", "lengths", "reverse", "rec"), OPTIONS)
def test_gradcheck_float64(zone: str, lengths: bool, reverse: bool, rec: bool) -> None:
    seed = _seed(zone, lengths, reverse, rec)
    masks = _masks(zone, lengths, rec, F64, seed)

    def function(*inputs: Tensor) -> tuple[Tensor, ...]:
        return _new(list(inputs), masks, reverse=reverse)

    assert gradcheck(function, tuple(_inputs(F64, seed)), atol=1e-6)


def test_gradcheck_with_drop_connect() -> None:
    keep = torch.rand(WIDTH, HIDDEN, generator=torch.Generator().manual_seed(3)) < 0.6
    masks = _masks("mask", False, True, F64, 7)

    def function(*inputs: Tensor) -> tuple[Tensor, ...]:
        return _new(list(inputs), masks, w_keep=keep, weight_drop=0.4)

    assert gradcheck(function, tuple(_inputs(F64, 7)), atol=1e-6)


@pytest.mark.parametrize(("zone", "lengths", "reverse", "rec"), OPTIONS)
def test_as_accurate_as_the_two_node_composition_in_float32(
    zone: str, lengths: bool, reverse: bool, rec: bool
) -> None:
    seed = _seed("f32", zone, lengths, reverse, rec)
    masks = _masks(zone, lengths, rec, torch.float32, seed)
    masks64 = _masks(zone, lengths, rec, F64, seed)
    assert_as_accurate_as(_new, _composed, _inputs(F64, seed), (masks, masks64), reverse=reverse)


def test_seeded_drop_connect_as_accurate_as_the_composition() -> None:
    inputs = _inputs(F64, 11)
    torch.manual_seed(12)
    keep = regularizers.drop_connect_keep(inputs[6], 0.3)
    assert_as_accurate_as(_new, _composed, inputs, ({}, {}), w_keep=keep, weight_drop=0.3)


def test_keeps_the_norm_inputs_and_outputs_not_the_gates() -> None:
    steps, batch, hidden = 12, 5, 16
    x = torch.randn(steps, batch, 8, requires_grad=True)
    w_ih = torch.randn(3 * hidden, 8, requires_grad=True)
    w_hh = torch.randn(3 * hidden, hidden, requires_grad=True)
    norm = (torch.ones(3 * hidden, requires_grad=True), torch.zeros(3 * hidden, requires_grad=True))
    kept: list[Tensor] = []

    def pack(tensor: Tensor) -> Tensor:
        kept.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        normalized_gru.normalized_gru(x, w_ih, norm, torch.zeros(batch, hidden), w_hh, None, norm)
    planes = [  # (T, B, N) float planes, leaving out the (T, B, 1) layer-norm statistics
        t.shape[-1] for t in kept if t.shape[:2] == (steps, batch) and t.shape[-1] > 1
    ]
    assert sorted(planes) == [8, hidden, 3 * hidden, 3 * hidden]  # x, outputs, a_in, a


def test_rejects_a_missing_recurrent_norm() -> None:
    x, w_ih, _, _, _, h0, w_hh, _, _, _ = _inputs(torch.float32, 0)
    with pytest.raises(ValueError, match="ln_hh"):
        normalized_gru.normalized_gru(x, w_ih, None, h0, w_hh, None, None)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_layer_routes_here_and_matches_the_loop(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = normalized_gru._NormalizedGRUFunction.apply

    def spy(*args: Any) -> Any:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(normalized_gru._NormalizedGRUFunction, "apply", spy)
    torch.manual_seed(4)
    layer = rnnlab.GRU(
        4, 6, num_layers=2, bidirectional=True, layer_norm=True, zoneout=0.2,
        recurrent_dropout=0.2, weight_drop=0.3,
    )  # fmt: skip
    layer.train(mode == "train")
    x = torch.randn(7, 3, 4, requires_grad=True)
    results = []
    for context in (force_fused_bptt, force_loop):
        torch.manual_seed(5)
        with context():
            out, h = layer(x, lengths=[7, 5, 2])
        grads = torch.autograd.grad((out * torch.linspace(-1, 1, 12)).sum() + h.sum(), x)
        results.append((out, h, grads[0]))
    assert calls  # in eval too: the outputs are kept, any zoneout weight goes
    for ours, reference in zip(results[0], results[1], strict=True):  # 1e-5 of the scale
        scale = float(reference.detach().abs().max())
        torch.testing.assert_close(ours, reference, atol=1e-5 * scale, rtol=1e-5)
