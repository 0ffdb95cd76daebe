"""Forward+backward speed of rnnlab layers against torch.nn and a per-step autograd loop.

For each cell (RNN tanh, LSTM, GRU), hidden size and option (plain, each extra alone, all
extras together) it times one training step (forward, sum of outputs, backward) and prints
the median over repetitions, with ratios measured in the same run against:

- ``torch.nn``: the plain torch.nn layer of the same size (the fused-kernel floor);
- ``loop``: a plain per-step autograd loop over ``torch.nn.*Cell``, what users write by hand;
- ``ref``: the same rnnlab layer forced through rnnlab's reference time loop
  (``rnnlab.nn.force_loop()``), which is what layers with extras ran before the fused BPTT.

Timings are interleaved repetition by repetition, in an order that rotates, so load on a
shared machine affects them alike; the medians and ratios are what to quote.

Usage:
    python benchmarks/layer_speed.py [--hidden 128 256 512] [--steps 50] [--batch 32]
        [--repeats 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from torch import Tensor, nn

import rnnlab
from timing import forced_loop, median_times, train_step

CELLS: dict[str, tuple[type[nn.Module], type[nn.Module], type[nn.Module], dict[str, Any]]] = {
    "rnn": (rnnlab.RNN, nn.RNN, nn.RNNCell, {"nonlinearity": "tanh"}),
    "lstm": (rnnlab.LSTM, nn.LSTM, nn.LSTMCell, {}),
    "gru": (rnnlab.GRU, nn.GRU, nn.GRUCell, {}),
}
OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "recurrent_dropout": {"recurrent_dropout": 0.25},
    "zoneout": {"zoneout": 0.1},
    "weight_drop": {"weight_drop": 0.5},
    "all": {"layer_norm": True, "recurrent_dropout": 0.25, "zoneout": 0.1, "weight_drop": 0.5},
}


class StepLoop(nn.Module):
    """A per-step autograd loop over a torch.nn cell: the hand-written baseline."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: Tensor) -> Tensor:
        state: Any = None
        outputs = []
        for x_t in x:  # (B, I) per step
            state = self.cell(x_t, state)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--input", type=int, default=None, help="input size (default: hidden)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cells", nargs="+", default=list(CELLS))
    parser.add_argument("--options", nargs="+", default=list(OPTIONS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, T={args.steps}, "
        f"B={args.batch}, forward+backward, median of {args.repeats}"
    )
    header = (
        f"{'cell':5} {'hidden':>6} {'option':18} {'kernel':17} {'ms':>8} {'torch.nn ms':>11} "
        f"{'loop ms':>8} {'ref ms':>8} {'vs torch.nn':>11} {'vs loop':>8} {'vs ref':>7}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for cell_name in args.cells:
        ours_cls, torch_cls, cell_cls, family = CELLS[cell_name]
        for hidden in args.hidden:
            size = args.input or hidden
            torch.manual_seed(0)
            x = torch.randn(args.steps, args.batch, size, device=args.device)
            reference = torch_cls(size, hidden, **family).to(args.device)
            loop = StepLoop(cell_cls(size, hidden, **family)).to(args.device)
            for option_name in args.options:
                layer = ours_cls(size, hidden, **family, **OPTIONS[option_name]).to(args.device)
                times = median_times(
                    {
                        "ours": train_step(layer, x),
                        "torch": train_step(reference, x),
                        "loop": train_step(loop, x),
                        "ref": forced_loop(train_step(layer, x)),
                    },
                    args.repeats,
                )
                row = {
                    "cell": cell_name,
                    "hidden": hidden,
                    "option": option_name,
                    "kernel": layer.kernel().name,
                    "ms": 1e3 * times["ours"],
                    "torch_ms": 1e3 * times["torch"],
                    "loop_ms": 1e3 * times["loop"],
                    "ref_ms": 1e3 * times["ref"],
                    "vs_torch": times["ours"] / times["torch"],
                    "vs_loop": times["ours"] / times["loop"],
                    "vs_ref": times["ours"] / times["ref"],
                    "ref_vs_torch": times["ref"] / times["torch"],
                }
                rows.append(row)
                print(
                    f"{cell_name:5} {hidden:>6} {option_name:18} {row['kernel']:17} "
                    f"{row['ms']:>8.2f} {row['torch_ms']:>11.2f} {row['loop_ms']:>8.2f} "
                    f"{row['ref_ms']:>8.2f} {row['vs_torch']:>10.2f}x {row['vs_loop']:>7.2f}x "
                    f"{row['vs_ref']:>6.2f}x",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
