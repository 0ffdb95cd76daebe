"""ATen operations per time step in the Python loops (``rnnlab.nn.loops``), per cell and extra.

On a GPU each of these operations (views aside) is one kernel launch, and the graphed loops'
time is mostly those launches' own GPU time; so the count is the GPU cost's CPU-side proxy,
countable anywhere. Runs the layers through the Python loops on the CPU and counts the
dispatched operations inside the forward and backward loop functions, views excluded.

Usage: python benchmarks/loop_ops.py [--steps 20]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import rnnlab
from rnnlab.nn import loop_backends, loops, native

VIEWS = {
    "select", "slice", "split", "split_with_sizes", "view", "_unsafe_view", "reshape", "t",
    "transpose", "unsqueeze", "expand", "as_strided", "alias", "detach", "chunk", "unbind",
}  # fmt: skip
EXTRAS: dict[str, dict[str, Any]] = {
    "layer_norm": {"layer_norm": True},
    "zoneout": {"zoneout": 0.1},
    "recurrent_dropout": {"recurrent_dropout": 0.2},
    "all": {"layer_norm": True, "zoneout": 0.1, "recurrent_dropout": 0.2, "weight_drop": 0.3},
}
LAYERS = {"rnn": rnnlab.RNN, "lstm": rnnlab.LSTM, "gru": rnnlab.GRU}


class _Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.overloadpacket.__name__ not in VIEWS:
            self.ops += 1
        return func(*args, **(kwargs or {}))


def count(family: str, extra: dict[str, Any], steps: int) -> dict[str, float]:
    """Operations per step in the family's forward and backward loop."""
    counts: dict[str, float] = {}
    originals = {name: getattr(loop_backends.PYTHON_LOOPS, name) for name in loops.WRITES}

    def counted(name: str) -> Any:
        def run(*args: Any) -> Any:
            with _Count() as counter:
                result = getattr(loops, name)(*args)
            counts[name.split("_")[1]] = counter.ops / steps
            return result

        return run

    try:
        for name in originals:
            setattr(loop_backends.PYTHON_LOOPS, name, counted(name))
        layer = LAYERS[family](16, 16, **extra)
        with native.python_loops():
            out, _ = layer(torch.randn(steps, 4, 16))
            out.sum().backward()
    finally:
        for name, original in originals.items():
            setattr(loop_backends.PYTHON_LOOPS, name, original)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(f"{'cell':5} {'extra':18} {'forward':>8} {'backward':>9} {'total':>6}  (ops per step)")
    for family in LAYERS:
        for label, extra in EXTRAS.items():
            c = count(family, extra, args.steps)
            total = c["forward"] + c["backward"]
            print(f"{family:5} {label:18} {c['forward']:8.1f} {c['backward']:9.1f} {total:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
