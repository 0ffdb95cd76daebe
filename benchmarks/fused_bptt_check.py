"""rnnlab's fused BPTT against the reference loop (and, without extras, cuDNN) on a device.

For every cell family and extra, the routed layer (fused BPTT) and the same layer under
``force_loop()`` run one forward and backward with the same seed, hence the same masks, in
float64 and float32; the largest difference of outputs, states and all gradients is printed.
Without extras, ``force_fused_bptt()`` is compared with torch's own kernel (cuDNN on GPU).
Exits non-zero when a difference exceeds its tolerance.

Usage: python benchmarks/fused_bptt_check.py [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

import rnnlab
from rnnlab.nn import force_fused_bptt, force_loop

VARIANTS: list[tuple[str, type[nn.Module], dict[str, Any]]] = [
    ("rnn-tanh", rnnlab.RNN, {}),
    ("rnn-relu", rnnlab.RNN, {"nonlinearity": "relu"}),
    ("lstm", rnnlab.LSTM, {}),
    ("lstm-proj", rnnlab.LSTM, {"proj_size": 16}),
    ("gru", rnnlab.GRU, {}),
]
EXTRAS: list[dict[str, Any]] = [
    {"layer_norm": True},
    {"recurrent_dropout": 0.3},
    {"zoneout": 0.2},
    {"layer_norm": True, "recurrent_dropout": 0.2, "zoneout": 0.2, "weight_drop": 0.3},
]
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}


def run(
    layer: nn.Module, x: Tensor, lengths: Tensor, context: AbstractContextManager[None]
) -> list[Tensor]:
    """Outputs, states and all gradients of one forward/backward with a fixed seed."""
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    torch.manual_seed(7)
    with context:
        out, state = layer(x, lengths=lengths)
    states = list(state) if isinstance(state, tuple) else [state]
    generator = torch.Generator(device=x.device).manual_seed(3)
    loss = sum(
        (t * torch.randn(t.shape, generator=generator, device=x.device, dtype=t.dtype)).sum()
        for t in [out, *states]
    )
    loss.backward()
    grads = [p.grad for p in layer.parameters() if p.grad is not None]
    return [out.detach(), *(s.detach() for s in states), x.grad, *grads]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    device = torch.device(parser.parse_args().device)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    lengths = torch.tensor([20, 13, 7, 1])
    failures = 0
    for dtype in (torch.float64, torch.float32):
        for name, cls, options in VARIANTS:
            for extras in [{}, *EXTRAS]:
                torch.manual_seed(0)
                layer = cls(
                    8, 32, num_layers=2, bidirectional=True, dropout=0.1, **options, **extras
                ).to(device, dtype)
                x = torch.randn(20, 4, 8, device=device, dtype=dtype)
                if extras:
                    fast = run(layer, x, lengths, nullcontext())
                    kernel = layer.kernel().name
                else:  # fused BPTT forced against torch's kernel; dropout off (other masks)
                    layer.dropout = 0.0
                    fast = run(layer, x, lengths, force_fused_bptt())
                    kernel = "forced-bptt"
                reference = run(layer, x, lengths, force_loop() if extras else nullcontext())
                worst = max(
                    ((a - b).abs().max() / (1 + b.abs().max())).item()
                    for a, b in zip(fast, reference, strict=True)
                )
                bad = worst > TOLERANCE[dtype]
                failures += bad
                label = "+".join(extras) or "plain vs torch kernel"
                print(
                    f"{dtype!s:14} {name:10} {kernel:18} {label:50} "
                    f"max rel diff {worst:.2e} {'FAIL' if bad else 'ok'}",
                    flush=True,
                )
    print("FAILURES:", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
