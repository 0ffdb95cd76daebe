"""The recomputing layer-normalized input projection (``rnnlab.nn.input_norm``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import rnnlab
from rnnlab.nn.input_norm import normalized_projection


def _reference(
    x: torch.Tensor, w: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    y = F.layer_norm(x @ w.t(), (w.shape[0],), gain, shift, 1e-5)
    return y if bias is None else y + bias


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("with_bias", [True, False])
def test_gradcheck_float64(affine: bool, with_bias: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    gain = (torch.rand(6, dtype=torch.float64) + 0.5).requires_grad_() if affine else None
    shift = torch.randn(6, dtype=torch.float64, requires_grad=True) if affine else None
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True) if with_bias else None
    assert gradcheck(normalized_projection, (x, w, gain, shift, bias))


def test_matches_autograd_in_float32() -> None:
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
    y_ours, y_ref = normalized_projection(*ours), _reference(*theirs)
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
