"""On a CUDA machine: rnnlab layers against torch.nn (cuDNN) for outputs and gradients.

Checks every cell family with lengths, packed input, both kernels (routed and forced loop)
and every extra's forward/backward on the GPU, printing the largest difference for each.
Exits non-zero when a difference exceeds the tolerance. Usage: python benchmarks/gpu_check.py
"""

from __future__ import annotations

import sys
from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.nn import force_loop

TOL = 1e-4  # float32 on GPU: cuDNN and the loop sum in different orders


def main() -> int:
    device = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    print(torch.__version__, torch.cuda.get_device_name(0), "cudnn", torch.backends.cudnn.version())
    failures = 0
    variants = [
        ("rnn", rnnlab.RNN, nn.RNN, {}),
        ("lstm", rnnlab.LSTM, nn.LSTM, {}),
        ("lstm-proj", rnnlab.LSTM, nn.LSTM, {"proj_size": 16}),
        ("gru", rnnlab.GRU, nn.GRU, {}),
    ]
    lengths = torch.tensor([20, 13, 7, 1])
    for name, ours_cls, torch_cls, options in variants:
        for path in ("routed", "loop"):
            torch.manual_seed(0)
            ours = ours_cls(
                8, 32, num_layers=2, bidirectional=True, batch_first=True, **options
            ).to(device)
            theirs = torch_cls(
                8, 32, num_layers=2, bidirectional=True, batch_first=True, **options
            ).to(device)
            theirs.load_state_dict(ours.state_dict())
            x = torch.randn(4, 20, 8, device=device)
            x_ours = x.clone().requires_grad_()
            x_theirs = x.clone().requires_grad_()
            with force_loop() if path == "loop" else nullcontext():
                out_ours, _ = ours(x_ours, lengths=lengths)
            packed = pack_padded_sequence(x_theirs, lengths, batch_first=True, enforce_sorted=False)
            out_p, _ = theirs(packed)
            out_theirs, _ = pad_packed_sequence(out_p, batch_first=True, total_length=20)
            weights = torch.randn_like(out_theirs)
            (out_ours * weights).sum().backward()
            (out_theirs * weights).sum().backward()
            diffs = {
                "output": (out_ours - out_theirs).abs().max().item(),
                "x.grad": (x_ours.grad - x_theirs.grad).abs().max().item(),
                "param.grad": max(
                    (a.grad - b.grad).abs().max().item()
                    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True)
                ),
            }
            bad = any(v > TOL for v in diffs.values())
            failures += bad
            kernel = ours.kernel().name if path == "routed" else "rnnlab-loop"
            print(
                f"{name:10} {path:7} {kernel:12}",
                " ".join(f"{k}={v:.2e}" for k, v in diffs.items()),
                "FAIL" if bad else "ok",
            )
    for extra in (
        {"layer_norm": True},
        {"recurrent_dropout": 0.3},
        {"zoneout": 0.2},
        {"weight_drop": 0.5},
    ):
        for cls in (rnnlab.RNN, rnnlab.LSTM, rnnlab.GRU):
            layer = cls(8, 32, num_layers=2, **extra).to(device)
            out, _ = layer(torch.randn(20, 4, 8, device=device), lengths=lengths)
            out.sum().backward()
            finite = all(torch.isfinite(p.grad).all() for p in layer.parameters())
            failures += not finite
            kernel = layer.kernel().name
            print(f"{cls.__name__:5} {next(iter(extra)):18} {kernel:12} grads finite: {finite}")
    print("FAILURES:", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
