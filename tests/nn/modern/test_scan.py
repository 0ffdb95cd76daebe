"""The scans of rnnlab.nn.modern.scan: gradcheck, native against Python, lengths, layouts."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rnnlab.nn import native
from rnnlab.nn.modern import scan

needs_native = pytest.mark.skipif(
    scan.native_ops() is None, reason=f"native scan {scan.native_status()}"
)


def _reference(a: Tensor, b: Tensor, h0: Tensor, lengths: list[int], reverse: bool) -> Tensor:
    """h_t = a_t h_{t-1} + b_t, sequence by sequence, zero past each length."""
    out = torch.zeros_like(a)
    for i, n in enumerate(lengths):
        h = h0[i]
        for t in range(n - 1, -1, -1) if reverse else range(n):
            h = a[t, i] * h + b[t, i]
            out[t, i] = h
    return out


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("python", [False, True])
def test_linear_scan_matches_definition_and_gradcheck(reverse: bool, python: bool) -> None:
    if not python and scan.native_ops() is None:
        pytest.skip("native scan not built")
    torch.manual_seed(0)
    a = torch.rand(6, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 3, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 2, 5])
    with native.python_loops() if python else torch.enable_grad():
        out, h_n = scan.linear_scan(a, b, h0, lengths, reverse)
        torch.testing.assert_close(out, _reference(a, b, h0, [6, 2, 5], reverse))
        last = torch.stack([out[0 if reverse else n - 1, i] for i, n in enumerate([6, 2, 5])])
        torch.testing.assert_close(h_n, last)
        assert torch.autograd.gradcheck(
            lambda a, b, h0: scan.linear_scan(a, b, h0, lengths, reverse), (a, b, h0)
        )


@needs_native
@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
@pytest.mark.parametrize("reverse", [False, True])
def test_gated_scan_gradcheck_native(kind: str, reverse: bool) -> None:
    torch.manual_seed(0)
    blocks = scan.BLOCKS[kind]
    pre = torch.randn(5, 2, blocks * 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 3])
    assert torch.autograd.gradcheck(
        lambda p, h: scan.GatedScan.apply(kind, p, h, lengths, reverse, False), (pre, h0)
    )


@needs_native
@pytest.mark.parametrize("relu", [False, True])
def test_indrnn_scan_gradcheck_native(relu: bool) -> None:
    torch.manual_seed(0)
    pre = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    u = torch.rand(3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([2, 5])
    assert torch.autograd.gradcheck(
        lambda p, u, h: scan.IndRNNScan.apply(p, u, h, lengths, True, relu, False), (pre, u, h0)
    )


@needs_native
@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_gated_scan_native_equals_python_float32(kind: str, batch_first: bool) -> None:
    """Fused gates + scan against coefficients() + Python loop, on a strided layout."""
    torch.manual_seed(0)
    steps, batch, hidden = 40, 5, 70  # 70: a column block that is no multiple of a vector
    shape = (batch, steps, scan.BLOCKS[kind] * hidden) if batch_first else (steps, batch, -1)
    pre = torch.randn(steps * batch * scan.BLOCKS[kind] * hidden).view(*shape) * 3
    pre = (pre.transpose(0, 1) if batch_first else pre).requires_grad_()
    h0 = torch.randn(batch, hidden, requires_grad=True)
    lengths = torch.tensor([40, 1, 39, 12, 40])
    for reverse in (False, True):
        out, h_n = scan.gated_scan(kind, pre, h0, lengths, reverse, batch_first)
        assert out.is_contiguous() != batch_first or steps == 1
        with native.python_loops():
            ref_out, ref_h = scan.gated_scan(kind, pre, h0, lengths, reverse, batch_first)
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(h_n, ref_h, atol=1e-5, rtol=1e-5)
        w = torch.randn_like(ref_out)
        got = torch.autograd.grad((out * w).sum() + h_n.sum(), [pre, h0])
        want = torch.autograd.grad((ref_out * w).sum() + ref_h.sum(), [pre, h0])
        for g, r in zip(got, want, strict=True):
            torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


@needs_native
def test_expanded_output_gradient_equals_dense() -> None:
    """out.sum()'s gradient arrives expanded (stride 0): same result as a dense ones tensor."""
    pre = torch.randn(9, 4, 2 * 6, requires_grad=True)
    h0 = torch.zeros(4, 6)
    out, _ = scan.gated_scan("mingru", pre, h0)
    (expanded,) = torch.autograd.grad(out.sum(), pre)
    out, _ = scan.gated_scan("mingru", pre, h0)
    (dense,) = torch.autograd.grad(out, pre, torch.ones(9, 4, 6))
    torch.testing.assert_close(expanded, dense)


def test_minlstm_coefficients_are_normalized_gates() -> None:
    pre = torch.randn(4, 3 * 5)
    a, b = scan.coefficients("minlstm", pre)
    f, i = torch.sigmoid(pre[:, :5]), torch.sigmoid(pre[:, 5:10])
    torch.testing.assert_close(a, f / (f + i))
    torch.testing.assert_close(b, i / (f + i) * scan.g(pre[:, 10:]))
