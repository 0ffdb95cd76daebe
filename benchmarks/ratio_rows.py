"""Ratio to torch.nn of chosen layer rows, in one process, repetitions interleaved.

For A/B comparisons of two versions of rnnlab on a noisy machine: run this under each
checkout in alternation (several processes each), and compare the per-process ratios'
medians. A row is ``cell:hidden:batch:option`` (options as in ``layer_speed.py``).

Usage:
    python benchmarks/ratio_rows.py --repeats 7 lstm:256:128:layer_norm gru:512:128:all
    # A/B: alternate, e.g. three times:
    PYTHONPATH=/path/to/old/src python benchmarks/ratio_rows.py ROWS...
    python benchmarks/ratio_rows.py ROWS...
"""

from __future__ import annotations

import argparse

import torch

from layer_speed import CELLS, OPTIONS
from timing import median_times, train_step


def ratio(spec: str, steps: int, repeats: int) -> tuple[float, float, float]:
    """``(rnnlab / torch.nn, rnnlab ms, torch.nn ms)`` for one row, medians."""
    cell, hidden_text, batch_text, option = spec.split(":")
    hidden, batch = int(hidden_text), int(batch_text)
    ours_cls, torch_cls, _, extra = CELLS[cell]
    torch.manual_seed(0)
    x = torch.randn(steps, batch, hidden, requires_grad=True)
    ours = train_step(ours_cls(hidden, hidden, **extra, **OPTIONS[option]), x)
    theirs = train_step(torch_cls(hidden, hidden, **extra), x)
    times = median_times({"ours": ours, "theirs": theirs}, repeats)
    mine, base = times["ours"], times["theirs"]
    return mine / base, 1e3 * mine, 1e3 * base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", help="cell:hidden:batch:option")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for spec in args.rows:
        value, mine, base = ratio(spec, args.steps, args.repeats)
        print(f"{spec} {value:.3f} ({mine:.1f}/{base:.1f} ms)", flush=True)


if __name__ == "__main__":
    main()
