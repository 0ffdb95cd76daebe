"""On a CUDA machine: rnnlab layers against torch.nn (cuDNN) for outputs and gradients.

Checks on the GPU, printing the largest difference for each:

- every cell family with lengths, packed input, both kernels (routed and forced loop),
  against cuDNN;
- every extra alone and all together (2 layers, bidirectional, lengths): the fused BPTT
  against rnnlab's reference loop, same seed hence the same masks;
- float64 ``gradcheck`` of each family with every extra (masks fixed by reseeding);
- ``torch.autocast`` in fp16 and bf16: layers with extras run and match float32.

Exits non-zero when a difference exceeds the tolerance. Usage: python benchmarks/gpu_check.py
"""

from __future__ import annotations

import itertools
import os
import sys
from contextlib import nullcontext
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.nn import cuda_graphs, force_loop

TOL = 1e-4  # float32 on GPU: cuDNN and the loop sum in different orders
# Fused BPTT vs reference loop, relative norm of the difference: float64 shows they compute
# the same function; float32 differences are rounding (LSTM + projection + layer norm reach
# ~6e-5 on the CPU too, where float64 agrees to 3e-14).
RELATIVE_TOL = {torch.float32: 1e-4, torch.float64: 1e-10}


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
    failures += check_extras(device)
    failures += check_gradients(device)
    failures += check_autocast(device)
    failures += check_graphs(device)
    print("FAILURES:", failures)
    return 1 if failures else 0


EXTRAS: list[dict[str, Any]] = [
    {"layer_norm": True},
    {"recurrent_dropout": 0.3},
    {"zoneout": 0.2},
    {"weight_drop": 0.5},
    {"layer_norm": True, "recurrent_dropout": 0.3, "zoneout": 0.2, "weight_drop": 0.5},
]
FAMILIES: list[tuple[str, type[nn.Module], dict[str, Any]]] = [
    ("rnn", rnnlab.RNN, {}),
    ("rnn-relu", rnnlab.RNN, {"nonlinearity": "relu"}),
    ("lstm", rnnlab.LSTM, {}),
    ("lstm-proj", rnnlab.LSTM, {"proj_size": 16}),
    ("gru", rnnlab.GRU, {}),
]


def _seeded_run(layer: nn.Module, x: Tensor, lengths: Tensor | None, seed: int) -> Tensor:
    torch.manual_seed(seed)  # seeds the GPU's generator too: the same masks every call
    out, _ = layer(x, lengths=lengths)
    return cast(Tensor, out)


def _relative(got: Tensor, want: Tensor) -> float:
    """``|got - want| / |want|`` (Frobenius norms)."""
    return float((got - want).norm() / want.norm().clamp_min(1e-30))


def check_extras(device: torch.device) -> int:
    """Fused BPTT (routed) against the reference loop, for every extra, on the GPU."""
    failures = 0
    lengths = torch.tensor([20, 13, 7, 1])
    for (name, cls, options), extra, dtype in itertools.product(FAMILIES, EXTRAS, RELATIVE_TOL):
        torch.manual_seed(0)
        layer = cls(8, 32, num_layers=2, bidirectional=True, **options, **extra)
        layer = layer.to(device=device, dtype=dtype)
        x = torch.randn(20, 4, 8, device=device, dtype=dtype)
        weights: Tensor | None = None
        results = []
        for forced in (nullcontext(), force_loop()):
            x_run = x.clone().requires_grad_()
            with forced:
                out = _seeded_run(layer, x_run, lengths, seed=1)
            weights = torch.randn_like(out) if weights is None else weights
            (out * weights).sum().backward()
            grads = [p.grad.clone() for p in layer.parameters() if p.grad is not None]
            results.append((out.detach(), x_run.grad, grads))
            layer.zero_grad()
        (out_a, dx_a, dp_a), (out_b, dx_b, dp_b) = results
        diffs = {  # relative: the loop sums in another order, and gradients grow with T
            "output": _relative(out_a, out_b),
            "x.grad": _relative(dx_a, dx_b),
            "param.grad": max(_relative(a, b) for a, b in zip(dp_a, dp_b, strict=True)),
        }
        bad = any(not v <= RELATIVE_TOL[dtype] for v in diffs.values())
        failures += bad
        label = "+".join(extra) if len(extra) == 1 else "all"
        print(
            f"{name:10} {label:18} {str(dtype)[6:]:8} {layer.kernel().name:17} vs loop (rel.):",
            " ".join(f"{k}={v:.2e}" for k, v in diffs.items()),
            "FAIL" if bad else "ok",
        )
    return failures


def check_gradients(device: torch.device) -> int:
    """float64 gradcheck of each family with every extra, masks fixed by reseeding."""
    failures = 0
    for name, cls, options in FAMILIES:
        options = {**options, "proj_size": 2} if "proj_size" in options else options
        layer = cls(3, 4, bidirectional=True, **options, **EXTRAS[-1])
        layer = layer.to(device=device, dtype=torch.float64)
        x = torch.randn(5, 2, 3, device=device, dtype=torch.float64, requires_grad=True)
        lengths = torch.tensor([5, 3])
        ok = torch.autograd.gradcheck(
            lambda x, layer=layer, lengths=lengths: _seeded_run(layer, x, lengths, seed=3),
            (x,),
            raise_exception=False,
        )
        failures += not ok
        print(
            f"gradcheck float64 {name:10} all extras {layer.kernel().name:17}",
            "ok" if ok else "FAIL",
        )
    return failures


def check_autocast(device: torch.device) -> int:
    """Layers with extras under fp16/bf16 autocast: finite, and float32's outputs."""
    failures = 0
    for (name, cls, options), dtype in itertools.product(FAMILIES, (torch.float16, torch.bfloat16)):
        torch.manual_seed(0)
        layer = cls(8, 32, num_layers=2, **options, **EXTRAS[-1]).to(device)
        x = torch.randn(20, 4, 8, device=device)
        reference = _seeded_run(layer, x, None, seed=5)
        with torch.autocast("cuda", dtype=dtype):
            mixed = _seeded_run(layer, x, None, seed=5)
        scaler_free_loss = mixed.float().sum()
        scaler_free_loss.backward()
        finite = all(torch.isfinite(p.grad).all() for p in layer.parameters())
        diff = (mixed.float() - reference).abs().max().item()
        bad = not finite or not diff <= TOL
        failures += bad
        print(
            f"autocast {dtype!s:14} {name:10} all extras: out {mixed.dtype}, "
            f"max diff to float32 {diff:.2e}, grads finite {finite}",
            "FAIL" if bad else "ok",
        )
    return failures


def check_graphs(device: torch.device) -> int:
    """Time loops replayed as CUDA graphs against the same loops run eagerly, three steps."""
    failures = 0
    for (name, cls, options), extra in itertools.product(FAMILIES, (EXTRAS[0], EXTRAS[-1])):
        torch.manual_seed(0)
        layer = cls(8, 32, num_layers=2, bidirectional=True, **options, **extra).to(device)
        x = torch.randn(20, 4, 8, device=device)
        lengths = torch.tensor([20, 13, 7, 1])
        runs = []
        for graphs in ("0", "1", "1", "1"):  # eager; then first sighting, capture, replay
            os.environ["RNNLAB_CUDA_GRAPHS"] = graphs
            out = _seeded_run(layer, x, lengths, seed=11)
            (out * torch.linspace(-1, 1, out.numel(), device=device).view_as(out)).sum().backward()
            runs.append((out.detach(), [p.grad.clone() for p in layer.parameters()]))
            layer.zero_grad()
        os.environ.pop("RNNLAB_CUDA_GRAPHS")
        (out_e, grads_e), *graphed = runs
        worst = max(
            max(_relative(o, out_e), *(_relative(g, e) for g, e in zip(gs, grads_e, strict=True)))
            for o, gs in graphed
        )
        unused = device.type == "cuda" and cuda_graphs.captured() == 0
        bad = unused or not worst <= 1e-6
        failures += bad
        label = "all" if len(extra) > 1 else "+".join(extra)
        print(
            f"cuda graphs {name:10} {label:11} graphed vs eager, 3 steps: max rel. diff "
            f"{worst:.2e}; graphs held {cuda_graphs.captured()}",
            "FAIL" if bad else "ok",
        )
    return failures


if __name__ == "__main__":
    sys.exit(main())
