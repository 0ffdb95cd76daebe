"""Training-step speed of MinGRU, MinLSTM and IndRNN against torch.nn.GRU, and their floor.

For every sequence length ``T`` and batch ``B`` it times one training step (forward, sum of
the outputs, backward, time-major input of ``H`` features, hidden size ``H``) of:

- ``torch.nn.GRU(H, H)``: the classic gated layer, torch's fused CPU kernel;
- ``MinGRU``, ``MinLSTM``, ``IndRNN`` (``rnnlab.nn.modern``, whatever path ``explain()`` names:
  the native fused scan where it builds);
- each cell's own input projection alone (one ``F.linear`` over all steps, forward and
  backward, the same weight shape): the floor a parallel cell can reach, as the scan is
  added on top of it.

The runs of one ``(T, B)`` are interleaved call by call in a rotating order
(``timing.median_times``), so load on the shared machine affects them alike; medians and the
ratios between them are what to quote. Beside each time: the bytes the step keeps for
backward (every tensor autograd saves, counted once per storage, through
``torch.autograd.graph.saved_tensors_hooks``), and ``ms/kstep``, the time per 1000 steps
(constant when the time grows linearly in ``T``).

Usage:
    OMP_NUM_THREADS=2 python benchmarks/modern_speed.py [--quick] [--hidden 256]
        [--steps 128 512 1024 4096] [--batch 1 32] [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.nn.modern import IndRNN, MinGRU, MinLSTM
from timing import median_times, train_step

CELLS: dict[str, type[nn.Module]] = {"mingru": MinGRU, "minlstm": MinLSTM, "indrnn": IndRNN}
BLOCKS = {"mingru": 2, "minlstm": 3, "indrnn": 1}


def projection_step(x: Tensor, rows: int) -> Callable[[], None]:
    """Forward and backward of one input projection ``(rows, I)`` over all steps of ``x``."""
    weight = nn.Parameter(torch.randn(rows, x.shape[-1]) * x.shape[-1] ** -0.5)
    bias = nn.Parameter(torch.zeros(rows))

    def run() -> None:
        F.linear(x, weight, bias).sum().backward()
        weight.grad = bias.grad = None

    return run


def saved_bytes(run: Callable[[], None]) -> int:
    """Bytes autograd keeps for backward during one call of ``run``, once per storage."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values())


def measure(steps: int, batch: int, hidden: int, repeats: int) -> dict[str, Any]:
    """Median seconds and saved bytes of every run at one ``(T, B)``."""
    torch.manual_seed(0)
    x = torch.randn(steps, batch, hidden)  # (T, B, I), time-major
    runs: dict[str, Callable[[], None]] = {"gru": train_step(nn.GRU(hidden, hidden), x)}
    explain = {}
    for name, cls in CELLS.items():
        layer = cls(hidden, hidden)
        explain[name] = layer.explain()  # type: ignore[operator]
        runs[name] = train_step(layer, x)
        runs[f"{name}_proj"] = projection_step(x, BLOCKS[name] * hidden)
    times = median_times(runs, repeats)
    memory = {name: saved_bytes(run) for name, run in runs.items()}
    return {
        "T": steps,
        "B": batch,
        "H": hidden,
        "seconds": times,
        "saved_bytes": memory,
        "explain": explain,
    }


def row(result: dict[str, Any]) -> str:
    times, memory = result["seconds"], result["saved_bytes"]
    gru = times["gru"]
    cells = []
    for name in CELLS:
        t, proj = times[name], times[f"{name}_proj"]
        cells.append(
            f"{1e3 * t:8.1f} {gru / t:6.1f}x {1e3 * proj:7.1f} {t / proj:5.2f} "
            f"{1e3 * t * 1000 / result['T']:7.1f} {memory[name] / 2**20:7.1f}"
        )
    return (
        f"{result['T']:5d} {result['B']:3d} {1e3 * gru:8.1f} {memory['gru'] / 2**20:7.1f} | "
        + " | ".join(cells)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--steps", type=int, nargs="+", default=[128, 512, 1024, 4096])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="T = 128 and 1024, 3 repeats")
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = [128, 1024], 3
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, H = {args.hidden}")
    head = "   ms  xGRU  proj ms  /proj ms/kstep  saved MB"
    print(
        "    T   B   GRU ms  GRU MB | "
        + " | ".join(f"{name:^{len(head)}}" for name in CELLS)
        + "\n"
        + " " * 27
        + "| "
        + " | ".join(head for _ in CELLS)
    )
    results = []
    for batch in args.batch:
        for steps in args.steps:
            result = measure(steps, batch, args.hidden, args.repeats)
            results.append(result)
            print(row(result), flush=True)
    for name, text in results[-1]["explain"].items():
        print(f"{name}: {text}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
