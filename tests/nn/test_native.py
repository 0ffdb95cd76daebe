"""rnnlab's native CPU kernel: where it cannot be built, the Python loops take over."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.utils.cpp_extension

import rnnlab
from rnnlab.nn import native


def _train_step(layer: torch.nn.Module) -> None:
    out, _ = layer(torch.randn(5, 2, 3))
    out.sum().backward()


def test_a_failed_build_leaves_the_python_loops_in_charge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "_loaded", {})

    def fail(**kwargs: Any) -> None:
        raise RuntimeError("Error building extension 'rnnlab_native'\ncompiler output ...")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", fail)
    assert not native.built()
    assert native.status().startswith("unavailable: the build failed (Error building extension")
    with pytest.raises(RuntimeError, match="native loops unavailable"):
        native.ops()
    layer = rnnlab.GRU(3, 4, layer_norm=True, zoneout=0.1)
    assert layer.kernel(batch=2).name == "rnnlab-fused-bptt"  # through the Python loops
    _train_step(layer)
    assert all(p.grad is not None for p in layer.parameters())
    assert rnnlab.GRU(3, 4).kernel(batch=2).name == "torch-fused"  # no native plain routing


def test_turned_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setenv("RNNLAB_NATIVE", "0")
    assert not native.built()
    assert native.status() == "unavailable: turned off by RNNLAB_NATIVE=0"
    _train_step(rnnlab.LSTM(3, 4, recurrent_dropout=0.5))


def test_status_before_and_after_the_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "_loaded", {})
    assert native.status().startswith("not built yet")
    if native.built():
        assert native.status() == "available"
