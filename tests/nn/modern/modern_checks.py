"""Shared checks of the parallel-in-time layers (MinGRU, MinLSTM, IndRNN).

The reference here is written independently of the layers' scan: every sequence alone,
cut to its own length, every layer and direction step by step through the layer's
sequential form (``cell_step``, plain autograd), the reverse direction over the reversed
steps. It is what "parallel form == sequential form" and "lengths == each sequence alone"
are checked against.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor

from rnnlab.nn.modern.base import ModernLayer

INPUT, HIDDEN, STEPS, BATCH = 4, 5, 7, 3
LENGTHS = [7, 4, 1]

OPTIONS = [
    dict(zip(("bias", "num_layers", "bidirectional", "batch_first"), values, strict=True))
    for values in itertools.product((True, False), (1, 2), (False, True), (False, True))
]
"""Every combination of the constructor options (dropout is checked on its own)."""


def sequential(
    layer: ModernLayer, x: Tensor, hx: Tensor, lengths: list[int]
) -> tuple[Tensor, Tensor]:
    """``output, h_n`` of ``layer``, each sequence alone through ``cell_step``.

    Args:
        x: ``(T, B, I)`` time-major whatever ``layer.batch_first`` says; output likewise.
    """
    steps, batch = x.shape[:2]
    outputs, finals = [], []
    for b in range(batch):
        seq = x[: lengths[b], b]  # (len, I)
        states = []
        for k in range(layer.num_layers):
            outs = []
            for direction, suffix in enumerate(layer._suffixes(k)):
                row = k * layer.directions + direction
                h = hx[row, b : b + 1]  # (1, H)
                order = range(lengths[b] - 1, -1, -1) if direction else range(lengths[b])
                ys: list[Tensor] = [seq.new_empty(0)] * lengths[b]
                for t in order:
                    h = layer.cell_step(layer._projection(seq[t : t + 1], suffix), h, suffix)
                    ys[t] = h[0]
                outs.append(torch.stack(ys))
                states.append(h[0])
            seq = torch.cat(outs, dim=-1)
        padding = seq.new_zeros(steps - lengths[b], seq.shape[-1])
        outputs.append(torch.cat([seq, padding]))
        finals.append(torch.stack(states))
    return torch.stack(outputs, dim=1), torch.stack(finals, dim=1)


def parallel(
    layer: ModernLayer, x: Tensor, hx: Tensor | None, lengths: list[int] | None
) -> tuple[Tensor, Tensor]:
    """``layer``'s own forward on time-major ``x``, output returned time-major."""
    inp = x.transpose(0, 1) if layer.batch_first else x
    out, h_n = layer(inp, hx, lengths)
    assert isinstance(out, Tensor)
    return (out.transpose(0, 1) if layer.batch_first else out), h_n


def grads(loss: Tensor, tensors: list[Tensor]) -> list[Tensor]:
    return list(torch.autograd.grad(loss, tensors))


def loss_of(out: Tensor, h_n: Tensor, weights: tuple[Tensor, Tensor]) -> Tensor:
    """A loss with a distinct weight per output element, so every gradient path is seen."""
    return (out * weights[0]).sum() + (h_n * weights[1]).sum()


def check_against_sequential(
    cls: type[ModernLayer],
    options: dict[str, Any],
    use_lengths: bool,
    use_hx: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    """Parallel form == sequential form: outputs, h_n and every gradient within 1e-5."""
    torch.manual_seed(0)
    layer = cls(INPUT, HIDDEN, **options, **(extra or {}))
    rows = layer.num_layers * layer.directions
    x = torch.randn(STEPS, BATCH, INPUT, requires_grad=True)
    hx = torch.randn(rows, BATCH, HIDDEN, requires_grad=True) if use_hx else None
    lengths = LENGTHS if use_lengths else None
    out, h_n = parallel(layer, x, hx, lengths)
    h0 = hx if hx is not None else torch.zeros(rows, BATCH, HIDDEN)
    ref_out, ref_h = sequential(layer, x, h0, lengths or [STEPS] * BATCH)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_n, ref_h, atol=1e-5, rtol=1e-5)
    weights = (torch.randn_like(out), torch.randn_like(h_n))
    inputs = [x, *layer.parameters()] + ([hx] if hx is not None else [])
    got = grads(loss_of(out, h_n, weights), inputs)
    want = grads(loss_of(ref_out, ref_h, weights), inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def check_gradcheck(cls: type[ModernLayer], extra: dict[str, Any] | None = None) -> None:
    """float64 gradcheck of a bidirectional 2-layer stack with lengths and hx."""
    torch.manual_seed(1)
    layer = cls(3, 2, num_layers=2, bidirectional=True, **(extra or {})).double()
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    hx = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    params = list(layer.parameters())

    def run(x: Tensor, hx: Tensor, *weights: Tensor) -> tuple[Tensor, Tensor]:
        named = dict(zip((n for n, _ in layer.named_parameters()), weights, strict=True))
        out, h_n = torch.func.functional_call(layer, named, (x, hx, [4, 2]))
        return out, h_n

    assert torch.autograd.gradcheck(run, (x, hx, *params), atol=1e-6)
