"""The layer-normalized input projection and its layer-norm helpers (``rnnlab.nn.input_norm``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import rnnlab
from rnnlab.nn import native
from rnnlab.nn.input_norm import layer_norm_grads, layer_norm_with_stats, normalized_projection


def _reference(
    x: torch.Tensor, w: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    y = F.layer_norm(x @ w.t(), (w.shape[0],), gain, shift, 1e-5)
    return y if bias is None else y + bias


@pytest.mark.parametrize("recompute", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("with_bias", [True, False])
def test_gradcheck_float64(affine: bool, with_bias: bool, recompute: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    gain = (torch.rand(6, dtype=torch.float64) + 0.5).requires_grad_() if affine else None
    shift = torch.randn(6, dtype=torch.float64, requires_grad=True) if affine else None
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True) if with_bias else None

    def projection(*args: torch.Tensor | None) -> torch.Tensor:
        return normalized_projection(*args, recompute=recompute)  # type: ignore[arg-type]

    assert gradcheck(projection, (x, w, gain, shift, bias))


@pytest.mark.parametrize("recompute", [True, False])
def test_matches_autograd_in_float32(recompute: bool) -> None:
    torch.manual_seed(1)
    args = [
        torch.randn(7, 4, 16),
        torch.randn(32, 16) * 0.3,
        torch.rand(32) + 0.5,
        torch.randn(32),
        torch.randn(32),
    ]
    ours = [a.clone().requires_grad_() for a in args]
    theirs = [a.clone().requires_grad_() for a in args]
    y_ours, y_ref = normalized_projection(*ours, recompute=recompute), _reference(*theirs)
    torch.testing.assert_close(y_ours, y_ref, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(y_ref)
    (y_ours * weights).sum().backward()
    (y_ref * weights).sum().backward()
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine.grad, reference.grad, atol=1e-5, rtol=1e-4)


def test_keeps_no_projection_plane_for_backward() -> None:
    """Only x, the weights and the statistics are kept: no (T, B, N) float plane but x."""
    x = torch.randn(10, 4, 8, requires_grad=True)
    w = torch.randn(64, 8, requires_grad=True)
    kept: list[torch.Size] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        kept.append(tensor.shape)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        normalized_projection(x, w, torch.ones(64), torch.zeros(64), None)
    assert torch.Size([10, 4, 64]) not in kept
    assert torch.Size([10, 4, 8]) in kept


def test_fused_simple_rnn_with_layer_norm_matches_the_loop() -> None:
    torch.manual_seed(2)
    layer = rnnlab.RNN(6, 10, num_layers=2, layer_norm=True)
    x = torch.randn(9, 3, 6, requires_grad=True)
    with rnnlab.nn.force_fused_bptt():
        out_fused, _ = layer(x)
    (grad_fused,) = torch.autograd.grad(out_fused.sum(), x)
    with rnnlab.nn.force_loop():
        out_loop, _ = layer(x)
    (grad_loop,) = torch.autograd.grad(out_loop.sum(), x)
    torch.testing.assert_close(out_fused, out_loop, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_fused, grad_loop, atol=1e-5, rtol=1e-4)


def test_the_lstm_with_layer_norm_keeps_its_projection_in_one_node() -> None:
    """On CPU the LSTM's LN_ih(x W_ih^T) is one node keeping x W_ih^T; same results."""
    torch.manual_seed(3)
    layer = rnnlab.LSTM(6, 10, layer_norm=True, zoneout=0.1)
    x = torch.randn(9, 3, 6, requires_grad=True)
    torch.manual_seed(4)
    out_fused, _ = layer(x)
    if native.built():
        assert out_fused.grad_fn is not None
        inputs = [edge[0] for edge in out_fused.grad_fn.next_functions if edge[0] is not None]
        assert any("NormalizedProjection" in type(node).__name__ for node in inputs)
    (grad_fused,) = torch.autograd.grad(out_fused.sum(), x)
    torch.manual_seed(4)
    with rnnlab.nn.force_loop():
        out_loop, _ = layer(x)
    (grad_loop,) = torch.autograd.grad(out_loop.sum(), x)
    torch.testing.assert_close(out_fused, out_loop, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_fused, grad_loop, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("overwrite", [True, False])
def test_layer_norm_helpers_match_aten(dtype: torch.dtype, affine: bool, overwrite: bool) -> None:
    """The native rows kernels (CPU) against ATen's layer norm, forward and backward."""
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(7, 5, 48, generator=gen, dtype=dtype) * 3 + 1
    gain = torch.rand(48, generator=gen, dtype=dtype) + 0.5 if affine else None
    shift = torch.randn(48, generator=gen, dtype=dtype) if affine else None
    d_y = torch.randn(7, 5, 48, generator=gen, dtype=dtype)
    y, mean, rstd = layer_norm_with_stats(a, gain, shift)
    y_ref, mean_ref, rstd_ref = torch.native_layer_norm(a, [48], gain, shift, 1e-5)
    tolerance = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {}
    for ours, theirs in ((y, y_ref), (mean, mean_ref), (rstd, rstd_ref)):
        torch.testing.assert_close(ours, theirs, **tolerance)
    expected = torch.ops.aten.native_layer_norm_backward(
        d_y, a, [48], mean_ref, rstd_ref, gain, shift, [True, affine, affine]
    )
    given = d_y.clone()
    grads = layer_norm_grads(given, a, (gain, shift, mean, rstd), (True, True), overwrite)
    if overwrite and native.usable(a):
        assert grads[0] is given  # written over the incoming gradient
    else:
        assert torch.equal(given, d_y)  # the incoming gradient untouched
    for ours_grad, their_grad in zip(grads, expected, strict=True):
        if their_grad is None:
            assert ours_grad is None
        else:
            assert ours_grad is not None
            torch.testing.assert_close(ours_grad, their_grad, **tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_native_layer_norm_rows_match_aten(dtype: torch.dtype, affine: bool) -> None:
    """The native forward kernel (what large buffers use) against ATen's layer norm."""
    if not native.built():
        pytest.skip(f"native loops {native.status()}")
    gen = torch.Generator().manual_seed(6)
    a = torch.randn(7, 5, 48, generator=gen, dtype=dtype) * 3 + 100  # a mean far from 0
    gain = torch.rand(48, generator=gen, dtype=dtype) + 0.5 if affine else None
    shift = torch.randn(48, generator=gen, dtype=dtype) if affine else None
    y, mean, rstd = torch.empty_like(a), a.new_empty(7, 5, 1), a.new_empty(7, 5, 1)
    native.ops().layer_norm_rows(a, gain, shift, y, mean, rstd)
    expected = torch.native_layer_norm(a, [48], gain, shift, 1e-5)
    tolerance = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {}
    for ours, theirs in zip((y, mean, rstd), expected, strict=True):
        torch.testing.assert_close(ours, theirs, **tolerance)


def test_explain_says_the_lstm_projection_is_one_node() -> None:
    explained = rnnlab.LSTM(4, 8, layer_norm=True).explain()
    if native.built():
        assert "input projection and layer norm are one node keeping x W_ih^T" in explained
    assert "one node keeping x W_ih^T" not in rnnlab.LSTM(4, 8, zoneout=0.1).explain()
