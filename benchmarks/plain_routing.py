"""Plain layers: rnnlab's native fused BPTT against torch's own CPU kernel, per size.

The table behind ``NATIVE_PLAIN_RULES`` in ``rnnlab/nn/kernels.py``: for each cell, hidden
size and batch, forward+backward of one layer (T steps, input size = hidden size, sum of the
outputs as the loss), torch.nn and ``rnnlab.nn.force_fused_bptt()`` timed back to back,
the median of the paired ratios (rnnlab / torch.nn; below 1 rnnlab is faster).

Run: ``python benchmarks/plain_routing.py --cells rnn gru lstm --hidden 128 256 512
--batch 1 8 32 128``.
"""

from __future__ import annotations

import argparse

import torch

import rnnlab
from rnnlab.nn import force_fused_bptt
from timing import paired_ratio

TORCH = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
OURS = {"rnn": rnnlab.RNN, "gru": rnnlab.GRU, "lstm": rnnlab.LSTM}


def routing_ratio(cell: str, hidden: int, batch: int, steps: int, repeats: int) -> float:
    """Median over ``repeats`` of time(rnnlab fused BPTT) / time(torch.nn), run back to back."""
    torch.manual_seed(0)
    theirs, ours = TORCH[cell](hidden, hidden), OURS[cell](hidden, hidden)
    x = torch.randn(steps, batch, hidden, requires_grad=True)

    def run_theirs() -> None:
        out, _ = theirs(x)
        out.sum().backward()

    def run_ours() -> None:
        with force_fused_bptt():
            out, _ = ours(x)
        out.sum().backward()

    return paired_ratio(run_ours, run_theirs, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"], choices=list(TORCH))
    parser.add_argument("--hidden", nargs="+", type=int, default=[128, 256, 512])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8, 32, 128])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, T={args.steps}; "
        "rnnlab fused BPTT / torch.nn, median of paired runs"
    )
    print(f"{'cell':5} {'H':>5} " + " ".join(f"{'B=' + str(b):>7}" for b in args.batch))
    for cell in args.cells:
        for hidden in args.hidden:
            ratios = [routing_ratio(cell, hidden, b, args.steps, args.repeats) for b in args.batch]
            print(f"{cell:5} {hidden:>5} " + " ".join(f"{r:>7.2f}" for r in ratios), flush=True)


if __name__ == "__main__":
    main()
