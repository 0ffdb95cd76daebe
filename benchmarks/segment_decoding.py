"""SegmentForecaster training step: factorized decoding against the materialized copies.

The parallel decoding step starts every output segment from the encoder's final state;
:func:`rnnlab.nn.broadcast_step.broadcast_step` computes its two projections once per state
and once per query instead of once per pair. This prints the median time of a training step
(forward, backward, Adam) both ways, on the ETT recipes' shapes (7 channels, input 96,
segments of 48, hidden 512, batch 256), and their ratio, measured in the same run.

    python benchmarks/segment_decoding.py [--horizons 96 720] [--cell gru] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch

import rnnlab.forecasting.segment_model as segment_model
from rnnlab.config import ModelConfig
from rnnlab.forecasting.segment_model import SegmentForecaster
from rnnlab.models.stack import build_recurrent


def step_seconds(model: SegmentForecaster, batch: int, repeats: int, fast: bool) -> float:
    """Median seconds of one training step, with the factorized decoding on or off."""
    original = segment_model.supports_broadcast_step
    if not fast:
        segment_model.supports_broadcast_step = lambda layer: False  # type: ignore[assignment]
    try:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        x = torch.randn(batch, 96, model.channels)
        y = torch.randn(batch, model.horizon, model.channels)
        times = []
        for i in range(repeats + 1):
            start = time.perf_counter()
            out = model(x)
            assert isinstance(out, torch.Tensor)
            loss = (out - y).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if i:  # the first step warms the allocator and the kernels up
                times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        segment_model.supports_broadcast_step = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=int, nargs="+", default=[96, 720])
    parser.add_argument("--cell", default="gru", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cell {args.cell}")
    print("| horizon | segments out | materialized s/step | factorized s/step | speed-up |")
    print("|---|---|---|---|---|")
    for horizon in args.horizons:
        torch.manual_seed(0)
        config = ModelConfig(cell=args.cell, hidden_size=args.hidden)
        model = SegmentForecaster(
            7,
            horizon,
            segment_length=48,
            build_layer=partial(build_recurrent, config),
            dropout=0.5,
        )
        slow = step_seconds(model, args.batch, args.repeats, fast=False)
        fast = step_seconds(model, args.batch, args.repeats, fast=True)
        ratio = slow / fast
        print(f"| {horizon} | {model.output_segments} | {slow:.3f} | {fast:.3f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
