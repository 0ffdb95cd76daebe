"""rnnlab's benchmark suite: machine peak, every layer variant, end to end; a table and a JSON.

One command measures, in one run on one machine:

1. **Machine peak**: GFLOP/s of a large float32 matrix multiply (``--peak-size``, median).
2. **Layer speed and memory**: for each cell (RNN tanh, LSTM, GRU), hidden size, batch size
   and option (plain, each extra alone, all together), one training step (forward, sum of
   the outputs, backward) of

   - ``ours``: the rnnlab layer with its default kernel (``kernel`` column),
   - ``torch.nn``: the plain torch.nn layer of the same size (the fused-kernel floor),
   - ``loop``: a per-step autograd loop over ``torch.nn.*Cell`` (what users write by hand),
   - ``ref``: the same rnnlab layer through its reference per-step loop (``force_loop``),

   timed interleaved in a rotating order (medians), with the ratios ``ours / torch.nn`` and
   ``ours / loop``; ``GFLOP/s`` and ``% peak`` from the cell's FLOPs (forward LSTM 8H(H+I),
   GRU 6H(H+I), RNN 2H(H+I) per token and layer; backward twice that); and the memory each
   keeps for backward (bytes of the distinct storages saved by autograd, measured with
   ``torch.autograd.graph.saved_tensors_hooks``, leaving out the input and the parameters,
   which are resident anyway: deterministic, unlike timings), for ours and torch.nn, with
   their ratio.
3. **End to end**: ``lm_throughput.py`` (the ptb-small model through rnnlab's Trainer
   against a plain torch.nn loop; synthetic tokens unless ``--ptb``) and, where
   ``$RNNLAB_DATA`` holds ETT and FSDD, ``task_throughput.py`` (the ``etth1-gru`` forecaster
   and the ``fsdd-gru`` digit recognizer, each against a plain torch.nn loop).

Usage::

    python benchmarks/suite.py          # the issue's grid: H 128-1024, B 1/32/128, T=100
    python benchmarks/suite.py --quick  # H 128/256/512, B 32, T=50
    python benchmarks/suite.py --cells lstm --hidden 256 --batch 32 --json out.json

Targets (issue #9, CPU): every extra at most 1.3x torch.nn at hidden >= 256 and 1.6x at
128; plain layers at most 1.02x; saved memory at most 1.5x torch.nn's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import rnnlab
from layer_speed import CELLS, OPTIONS, StepLoop
from timing import forced_loop, median_seconds, median_times, train_step

FLOPS_PER_TOKEN = {"rnn": 2, "lstm": 8, "gru": 6}  # x H(H+I), forward, one layer
TARGETS = {"extra_256": 1.3, "extra_128": 1.6, "plain": 1.02, "memory": 1.5}


def machine_peak(size: int, repeats: int, device: str) -> float:
    """GFLOP/s of a ``size x size`` float32 matrix multiply, median of ``repeats``."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    out = torch.empty(size, size, device=device)
    torch.mm(a, b, out=out)
    elapsed = median_seconds(lambda: torch.mm(a, b, out=out), repeats, device)
    return 2 * size**3 / elapsed / 1e9


def saved_bytes(module: nn.Module, x: Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for backward in one forward pass.

    Neither the input (the caller's) nor the module's parameters (resident whether or not
    backward runs) count: what is left is the memory training adds for backward.
    """
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = module(x)
    out = out[0] if isinstance(out, tuple) else out
    out.sum().backward()
    module.zero_grad(set_to_none=True)
    storages.pop(x.untyped_storage().data_ptr(), None)
    for parameter in module.parameters():
        storages.pop(parameter.untyped_storage().data_ptr(), None)
    return sum(storages.values())


def training_flops(cell: str, hidden: int, size: int, steps: int, batch: int) -> float:
    """Forward + backward FLOPs of one layer: 3 x forward."""
    return 3.0 * FLOPS_PER_TOKEN[cell] * hidden * (hidden + size) * steps * batch


def grid(args: argparse.Namespace) -> Iterator[tuple[str, int, int, Tensor]]:
    """``(cell, hidden, batch, x)`` for every size asked, ``x`` drawn from a fixed seed."""
    for cell_name in args.cells:
        for hidden in args.hidden:
            for batch in args.batch:
                torch.manual_seed(0)
                yield (
                    cell_name,
                    hidden,
                    batch,
                    torch.randn(args.steps, batch, hidden, device=args.device),
                )


def memory_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Only the saved-memory columns (deterministic, seconds to measure): ``--memory-only``."""
    rows: list[dict[str, Any]] = []
    print(f"{'cell':5} {'H':>5} {'B':>4} {'option':18} {'MB':>8} {'torch MB':>8} {'mem x':>6}")
    for cell_name, hidden, batch, x in grid(args):
        ours_cls, torch_cls, _, family = CELLS[cell_name]
        torch_bytes = saved_bytes(torch_cls(hidden, hidden, **family).to(args.device), x)
        for option in args.options:
            layer = ours_cls(hidden, hidden, **family, **OPTIONS[option]).to(args.device)
            ours_bytes = saved_bytes(layer, x)
            ratio = ours_bytes / torch_bytes if torch_bytes else None
            rows.append(
                {
                    "cell": cell_name,
                    "hidden": hidden,
                    "batch": batch,
                    "steps": args.steps,
                    "option": option,
                    "saved_mb": ours_bytes / 2**20,
                    "torch_saved_mb": torch_bytes / 2**20,
                    "memory_ratio": ratio,
                }
            )
            print(
                f"{cell_name:5} {hidden:>5} {batch:>4} {option:18} "
                f"{ours_bytes / 2**20:8.2f} {torch_bytes / 2**20:8.2f} "
                + (f"{ratio:5.2f}x" if ratio is not None else "     -"),
                flush=True,
            )
    return rows


def layer_rows(args: argparse.Namespace, peak: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    header = (
        f"{'cell':5} {'H':>5} {'B':>4} {'option':18} {'kernel':17} {'ms':>8} {'torch ms':>9} "
        f"{'vs torch':>8} {'vs loop':>8} {'vs ref':>7} {'GFLOP/s':>8} {'%peak':>6} "
        f"{'MB':>7} {'torch MB':>8} {'mem x':>6}"
    )
    print(header)
    print("-" * len(header), flush=True)
    for cell_name, hidden, batch, x in grid(args):
        ours_cls, torch_cls, cell_cls, family = CELLS[cell_name]
        reference = torch_cls(hidden, hidden, **family).to(args.device)
        loop = StepLoop(cell_cls(hidden, hidden, **family)).to(args.device)
        torch_bytes = saved_bytes(reference, x)
        for option in args.options:
            layer = ours_cls(hidden, hidden, **family, **OPTIONS[option]).to(args.device)
            runs = {
                "ours": train_step(layer, x),
                "torch": train_step(reference, x),
                "loop": train_step(loop, x),
            }
            if option != "plain" or args.with_ref:
                runs["ref"] = forced_loop(train_step(layer, x))
            times = median_times(runs, args.repeats)
            ours_bytes = saved_bytes(layer, x)
            flops = training_flops(cell_name, hidden, hidden, args.steps, batch)
            row = {
                "cell": cell_name,
                "hidden": hidden,
                "batch": batch,
                "steps": args.steps,
                "option": option,
                "kernel": layer.kernel(batch).name,
                "ms": 1e3 * times["ours"],
                "torch_ms": 1e3 * times["torch"],
                "loop_ms": 1e3 * times["loop"],
                "ref_ms": 1e3 * times["ref"] if "ref" in times else None,
                "vs_torch": times["ours"] / times["torch"],
                "vs_loop": times["ours"] / times["loop"],
                "vs_ref": times["ours"] / times["ref"] if "ref" in times else None,
                "gflops": flops / times["ours"] / 1e9,
                "fraction_of_peak": flops / times["ours"] / 1e9 / peak,
                "saved_mb": ours_bytes / 2**20,
                "torch_saved_mb": torch_bytes / 2**20,
                "memory_ratio": ours_bytes / torch_bytes if torch_bytes else None,
            }
            rows.append(row)
            vs_ref = f"{row['vs_ref']:6.2f}x" if row["vs_ref"] is not None else "      -"
            memory = row["memory_ratio"]
            print(
                f"{cell_name:5} {hidden:>5} {batch:>4} {option:18} {row['kernel']:17} "
                f"{row['ms']:>8.2f} {row['torch_ms']:>9.2f} {row['vs_torch']:>7.2f}x "
                f"{row['vs_loop']:>7.2f}x {vs_ref} {row['gflops']:>8.1f} "
                f"{100 * row['fraction_of_peak']:>5.1f}% {row['saved_mb']:>7.1f} "
                f"{row['torch_saved_mb']:>8.1f} "
                + (f"{memory:>5.2f}x" if memory is not None else "     -"),
                flush=True,
            )
    return rows


def verdict(rows: list[dict[str, Any]]) -> list[str]:
    """The targets, checked against this run's rows."""
    lines = []
    for label, selected, limit in (
        (
            "extras at hidden >= 256",
            [r for r in rows if r["option"] != "plain" and r["hidden"] >= 256],
            TARGETS["extra_256"],
        ),
        (
            "extras at hidden 128",
            [r for r in rows if r["option"] != "plain" and r["hidden"] < 256],
            TARGETS["extra_128"],
        ),
        ("plain layers", [r for r in rows if r["option"] == "plain"], TARGETS["plain"]),
    ):
        if not selected:
            continue
        worst = max(selected, key=lambda r: r["vs_torch"])
        met = sum(r["vs_torch"] <= limit for r in selected)
        lines.append(
            f"{label}: {met}/{len(selected)} rows within {limit}x of torch.nn; median "
            f"{statistics.median(r['vs_torch'] for r in selected):.2f}x, worst "
            f"{worst['vs_torch']:.2f}x ({worst['cell']} H={worst['hidden']} B={worst['batch']} "
            f"{worst['option']})"
        )
    memory = [r for r in rows if r["memory_ratio"] is not None]
    if memory:
        worst = max(memory, key=lambda r: r["memory_ratio"])
        met = sum(r["memory_ratio"] <= TARGETS["memory"] for r in memory)
        lines.append(
            f"saved memory: {met}/{len(memory)} rows within {TARGETS['memory']}x of torch.nn; "
            f"worst {worst['memory_ratio']:.2f}x ({worst['cell']} H={worst['hidden']} "
            f"{worst['option']})"
        )
    return lines


def end_to_end(args: argparse.Namespace) -> list[str]:
    """Training throughput, rnnlab Trainer against plain loops: ptb-small, ETTh1, FSDD."""
    import lm_throughput
    import task_throughput

    argv = ["--steps", str(args.e2e_steps), "--repeats", "2", "--threads"]
    argv += [str(torch.get_num_threads()), "--device", args.device]
    if not args.ptb:
        argv.append("--synthetic")
    lm_throughput.main(argv)
    if os.environ.get("RNNLAB_DATA") and args.device == "cpu":
        task_throughput.main(["etth1-gru", "fsdd-gru", "--threads", str(torch.get_num_threads())])
    else:
        print("task_throughput: skipped (set RNNLAB_DATA to a folder with ett/ and fsdd/)")
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="hidden 128-512, batch 32, T=50")
    parser.add_argument("--cells", nargs="+", default=list(CELLS))
    parser.add_argument("--options", nargs="+", default=list(OPTIONS))
    parser.add_argument("--hidden", type=int, nargs="+", default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None, help="sequence length T")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--peak-size", type=int, default=2048)
    parser.add_argument("--with-ref", action="store_true", help="time force_loop for plain too")
    parser.add_argument("--skip-layers", action="store_true")
    parser.add_argument(
        "--memory-only", action="store_true", help="only the saved-memory columns, no timing"
    )
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--e2e-steps", type=int, default=100)
    parser.add_argument("--ptb", action="store_true", help="end to end on PTB ($RNNLAB_DATA)")
    parser.add_argument("--json", default="benchmark-results.json")
    args = parser.parse_args(argv)
    args.hidden = args.hidden or ([128, 256, 512] if args.quick else [128, 256, 512, 1024])
    args.batch = args.batch or ([32] if args.quick else [1, 32, 128])
    args.steps = args.steps or (50 if args.quick else 100)
    args.repeats = args.repeats or (7 if args.quick else 5)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_only:
        memory = memory_rows(args)
        Path(args.json).write_text(json.dumps({"memory": memory}, indent=2), encoding="utf-8")
        print(f"\nwrote {args.json}")
        return 0

    machine = {
        "torch": torch.__version__,
        "rnnlab": rnnlab.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "device": args.device,
    }
    peak = machine_peak(args.peak_size, 9, args.device)
    machine["peak_gflops"] = peak
    print(
        f"torch {machine['torch']}, rnnlab {machine['rnnlab']}, {machine['threads']} thread(s), "
        f"device {args.device}; peak {peak:.1f} GFLOP/s ({args.peak_size}^2 float32 matmul)"
    )
    print(
        f"layers: T={args.steps}, forward+backward, median of {args.repeats}; MB = memory "
        "saved for backward (beyond input and parameters)",
        flush=True,
    )
    rows = [] if args.skip_layers else layer_rows(args, peak)
    summary = verdict(rows)
    for line in summary:
        print(line)
    results: dict[str, Any] = {"machine": machine, "layers": rows, "summary": summary}
    if not args.skip_e2e:
        print("\nend to end: ptb-small language model", flush=True)
        results["end_to_end_argv"] = end_to_end(args)
    Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
