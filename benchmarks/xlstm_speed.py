"""sLSTM and mLSTM training-step time and memory against ``torch.nn.LSTM`` (issue #21).

One training step = forward, sum of the outputs, backward (``timing.train_step``), input
size = hidden size. Rows per ``(T, B)``, the implementations interleaved call by call
(``timing.median_times``), medians in milliseconds:

- ``lstm``: ``torch.nn.LSTM`` (torch's fused CPU kernel), the baseline;
- ``slstm``: ``rnnlab.nn.modern.slstm.SLSTM`` (hand-written BPTT; its time loops native C++
  on CPU, ``RNNLAB_NATIVE=0`` runs the TorchScript loops instead);
- ``mlstm-par``: ``MLSTM`` in its chunked parallel form (``--chunk`` steps a chunk);
- ``mlstm-rec``: the same layer, ``form="recurrent"`` (one step at a time).

Ratios printed: sLSTM / LSTM, mLSTM parallel / LSTM, mLSTM parallel / recurrent. Memory:
bytes autograd keeps for backward (``suite.saved_bytes``: distinct saved storages, leaving
out the input and the parameters).

Run: ``OMP_NUM_THREADS=2 python benchmarks/xlstm_speed.py [--quick] [--long]`` (``--quick``:
T = 128, 512; default T = 128, 512, 1024; ``--long`` adds 4096; ``--only slstm`` runs
LSTM and sLSTM alone).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from torch import nn

from rnnlab.nn.modern.mlstm import MLSTM
from rnnlab.nn.modern.slstm import SLSTM
from suite import saved_bytes
from timing import median_times, train_step


def build(hidden: int, heads: int, chunk: int) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "lstm": nn.LSTM(hidden, hidden),
        "slstm": SLSTM(hidden, hidden, num_heads=heads),
        "mlstm-par": MLSTM(hidden, hidden, num_heads=heads, chunk_size=chunk),
        "mlstm-rec": MLSTM(hidden, hidden, num_heads=heads, form="recurrent"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 128, 512 only")
    parser.add_argument("--long", action="store_true", help="add T = 4096")
    parser.add_argument("--steps", type=int, nargs="*", help="sequence lengths (overrides)")
    parser.add_argument("--batch", type=int, nargs="*", default=[1, 32])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--skip-recurrent-above",
        type=int,
        default=4096,
        help="leave out mlstm-rec for longer T (its per-step loop is slow)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        choices=["lstm", "slstm", "mlstm-par", "mlstm-rec"],
        help="run only these implementations (lstm always runs: the baseline)",
    )
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    steps = args.steps or ([128, 512] if args.quick else [128, 512, 1024])
    if args.long and not args.steps:
        steps = [*steps, 4096]
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads "
        f"(OMP_NUM_THREADS={threads}), H={args.hidden}, heads={args.heads}, "
        f"chunk={args.chunk}, medians of {args.repeats}",
        flush=True,
    )
    header = (
        "| T | B | lstm ms | slstm ms | mlstm-par ms | mlstm-rec ms | slstm/lstm | "
        "mlstm-par/lstm | par/rec | saved MB lstm / slstm / par / rec |"
    )
    print(header)
    print("|" + "---|" * 10)
    rows = []
    for length in steps:
        for batch in args.batch:
            modules = build(args.hidden, args.heads, args.chunk)
            if length > args.skip_recurrent_above:
                del modules["mlstm-rec"]
            if args.only:
                keep = {"lstm", *args.only}
                modules = {name: m for name, m in modules.items() if name in keep}
            x = torch.randn(length, batch, args.hidden)
            runs = {name: train_step(module, x) for name, module in modules.items()}
            times = median_times(runs, args.repeats, warmup=1)
            memory = {name: saved_bytes(module, x) / 2**20 for name, module in modules.items()}
            ms = {name: 1000 * value for name, value in times.items()}
            rec = ms.get("mlstm-rec")
            par = ms.get("mlstm-par")
            slstm = ms.get("slstm")
            row = {"T": length, "B": batch, "ms": ms, "saved_mb": memory}
            rows.append(row)

            def cell(value: float | None, fmt: str = "{:.1f}") -> str:
                return "-" if value is None else fmt.format(value)

            lstm = ms["lstm"]
            print(
                f"| {length} | {batch} | {lstm:.1f} | {cell(slstm)} | "
                f"{cell(par)} | {cell(rec)} | "
                f"{cell(None if slstm is None else slstm / lstm, '{:.2f}x')} | "
                f"{cell(None if par is None else par / lstm, '{:.2f}x')} | "
                f"{cell(None if rec is None or par is None else par / rec, '{:.2f}x')} | "
                + " / ".join(f"{memory[n]:.1f}" for n in modules)
                + " |",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"argv": sys.argv, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
