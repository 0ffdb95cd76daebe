"""rnnlab's native CPU kernel: where it cannot be built, the Python loops take over."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
import torch.utils.cpp_extension

import rnnlab
from rnnlab.nn import bptt_gru, bptt_lstm, bptt_parts, bptt_rnn, native


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


def test_the_loops_are_split_between_the_threads() -> None:
    """The build has OpenMP, or ATen's parallel_for runs every native loop on one thread."""
    if not native.built():
        pytest.skip(f"native loops {native.status()}")
    if not sys.platform.startswith("linux"):
        pytest.skip("a compiler without OpenMP falls back to a one-thread build")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert native.ops().parallel_threads() == 2
        assert "split between 2 threads" in native.status()
    finally:
        torch.set_num_threads(threads)


_FAMILIES = {"rnn": rnnlab.RNN, "lstm": rnnlab.LSTM, "gru": rnnlab.GRU}
_EXTRAS = {"layer_norm": True, "recurrent_dropout": 0.25, "zoneout": 0.1, "weight_drop": 0.5}


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward hands on a contiguous copy of the gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


def _gradients(
    family: str, x: torch.Tensor, loss: Any, threads: int = 2, copied: bool = False
) -> list[torch.Tensor]:
    """Gradients of ``loss(outputs)`` through a layer with every extra (same masks each call).

    ``copied``: the layer receives its outputs' gradient as a contiguous copy.
    """
    torch.manual_seed(0)
    layer = _FAMILIES[family](6, 12, **_EXTRAS)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(1)
        with rnnlab.nn.force_fused_bptt():
            out, _ = layer(x)
        if copied:
            out = _ContiguousGrad.apply(out)
        return list(torch.autograd.grad(loss(out), [x, *layer.parameters()]))
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_one_thread_and_two_give_the_same_gradients(family: str) -> None:
    """40 rows: a block of rows per thread, each with its own time loop and matrix multiplies."""
    if not native.built():
        pytest.skip(f"native loops {native.status()}")
    x = torch.randn(9, 40, 6, requires_grad=True)
    one = _gradients(family, x, lambda out: out.pow(2).sum(), threads=1)
    two = _gradients(family, x, lambda out: out.pow(2).sum(), threads=2)
    for a, b in zip(one, two, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


_WEIGHTS = torch.randn(20, 7, 12)  # batch-first


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(
    ("layout", "loss"),
    [
        ("every stride 0", lambda out: out.sum()),
        ("last stride 0", lambda out: (out.sum(-1) * _WEIGHTS[:, :, 0].t()).sum()),
        ("transposed view", lambda out: (out.transpose(0, 1) * _WEIGHTS).sum()),
    ],
)
def test_the_outputs_gradient_is_read_in_its_layout(
    family: str, layout: str, loss: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The native loops read autograd's gradient where it lies: as from a contiguous copy."""
    if not native.built():
        pytest.skip(f"native loops {native.status()}")
    handed: list[tuple[bool, bool]] = []  # (contiguous, read in place)
    read = bptt_parts.output_grad

    def spy(d_out: torch.Tensor) -> torch.Tensor:
        result = read(d_out)
        handed.append((d_out.is_contiguous(), result is d_out))
        return result

    bptt = {"rnn": bptt_rnn, "lstm": bptt_lstm, "gru": bptt_gru}[family]
    monkeypatch.setattr(bptt, "output_grad", spy)
    x = torch.randn(7, 20, 6, requires_grad=True)
    ours = _gradients(family, x, loss)
    assert handed == [(False, True)]  # the layout reached the loops, uncopied
    reference = _gradients(family, x, loss, copied=True)
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=layout)
