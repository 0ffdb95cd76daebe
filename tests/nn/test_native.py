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
        assert native.status().startswith("available")


@pytest.mark.parametrize(
    ("family", "options"),
    [
        ("rnn", {"layer_norm": True}),
        ("lstm", {"layer_norm": True, "proj_size": 5}),
        ("lstm", {"recurrent_dropout": 0.2}),
        ("gru", {"layer_norm": True, "zoneout": 0.1}),
    ],
)
@pytest.mark.parametrize("batch", [1, 8, 40])  # one row, one block, a block per thread
def test_packed_step_weights_give_the_unpacked_results(
    family: str, options: dict[str, Any], batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loops' weight packed once (MKL, where torch has it) against ATen's mm per step."""
    if not native.built():
        pytest.skip(f"native loops {native.status()}")
    monkeypatch.delenv("RNNLAB_PACKED_GEMM", raising=False)
    if torch.backends.mkl.is_available():  # x86 builds of torch: the packed path is on
        assert native.ops().packed_gemm()
    cls = {"rnn": rnnlab.RNN, "lstm": rnnlab.LSTM, "gru": rnnlab.GRU}[family]
    torch.manual_seed(0)
    layer = cls(6, 12, bidirectional=True, **options)
    x = torch.randn(7, batch, 6)
    results = []
    for packed in ("1", "0"):
        monkeypatch.setenv("RNNLAB_PACKED_GEMM", packed)
        torch.manual_seed(1)
        with rnnlab.nn.force_fused_bptt():
            out, _ = layer(x)
        grads = torch.autograd.grad(out.pow(2).sum(), list(layer.parameters()))
        results.append((out, *grads))
    for ours, reference in zip(*results, strict=True):
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
