"""Recurrent layers under ``torch.autocast`` (mixed precision), on the CPU with bf16.

Layers that run rnnlab's fused BPTT compute the recurrence in the parameters' dtype with
autocast off, forward and backward (``rnnlab.nn.precision``): under autocast they must give
what they give without it, whether ``backward()`` is called inside or outside the autocast
block, and a bf16 input (what an autocast ``Linear`` hands on) gets a bf16 gradient.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import rnnlab
from rnnlab.nn import force_loop, native

EXTRAS: list[dict[str, Any]] = [
    {},  # plain: at batch 3 the RNN and GRU route to the native fused BPTT in training
    {"layer_norm": True},
    {"recurrent_dropout": 0.3},
    {"zoneout": 0.2},
    {"weight_drop": 0.4},
    {"layer_norm": True, "recurrent_dropout": 0.3, "zoneout": 0.2, "weight_drop": 0.4},
]
LAYERS = {"rnn": rnnlab.RNN, "lstm": rnnlab.LSTM, "gru": rnnlab.GRU}


def _run(layer: nn.Module, x: Tensor, autocast: bool, backward_inside: bool) -> Tensor:
    torch.manual_seed(7)  # the same masks in every run
    context = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
    with context:
        out, _ = layer(x, lengths=torch.tensor([6, 4, 1]))
        if backward_inside:
            (out.float() * torch.arange(out.numel()).view_as(out).sin()).sum().backward()
    if not backward_inside:
        (out.float() * torch.arange(out.numel()).view_as(out).sin()).sum().backward()
    return out


@pytest.mark.parametrize("backward_inside", [False, True], ids=["backward-after", "inside"])
@pytest.mark.parametrize("extras", EXTRAS, ids=lambda e: "+".join(e) or "plain")
@pytest.mark.parametrize("family", list(LAYERS))
@pytest.mark.parametrize("loops", ["native", "python"])
def test_fused_bptt_under_autocast_computes_in_full_precision(
    family: str, extras: dict[str, Any], backward_inside: bool, loops: str
) -> None:
    torch.manual_seed(0)
    layer = LAYERS[family](5, 8, num_layers=2, bidirectional=True, **extras)
    x = torch.randn(6, 3, 5)
    with native.python_loops() if loops == "python" else contextlib.nullcontext():
        if layer.kernel(3).name != "rnnlab-fused-bptt":
            pytest.skip(f"{family} {extras} runs {layer.kernel(3).name}: torch's own autocast")
        reference = _run(layer, x, autocast=False, backward_inside=False)
        expected = [p.grad.clone() for p in layer.parameters()]
        layer.zero_grad()
        mixed = _run(layer, x, autocast=True, backward_inside=backward_inside)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, reference, atol=1e-6, rtol=1e-6)
    for got, want in zip((p.grad for p in layer.parameters()), expected, strict=True):
        assert got is not None and torch.isfinite(got).all()
        if not backward_inside:
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("family", list(LAYERS))
def test_bf16_input_trains(family: str) -> None:
    torch.manual_seed(0)
    projection = nn.Linear(4, 5)
    layer = LAYERS[family](5, 8, layer_norm=True, zoneout=0.1)
    x = torch.randn(6, 3, 4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = projection(x)
        assert hidden.dtype == torch.bfloat16
        out, _ = layer(hidden)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("family", list(LAYERS))
def test_reference_loop_runs_under_autocast(family: str) -> None:
    layer = LAYERS[family](5, 8, layer_norm=True, zoneout=0.1, recurrent_dropout=0.2)
    with force_loop(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = layer(torch.randn(6, 3, 5))
    out.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())
