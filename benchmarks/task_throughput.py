"""Training throughput of a task recipe: rnnlab's Trainer against a plain torch.nn loop.

For ``etth1-gru`` (ETTh1 forecasting, channel-independent GRU 128, input 96, horizon 96)
and ``fsdd-gru`` (spoken digits, 2 x bidirectional GRU 128 over MFCC frames, mean pooling):

- rnnlab: ``rnnlab.api.train`` on the recipe, timed by a callback from the end of step
  ``warmup`` to the end of the last step;
- plain: the same architecture written here with ``torch.nn.GRU`` (packed sequences for the
  variable-length speech frames) and ``torch.nn.Linear``, Adam, gradient clipping, trained
  on batches from the same task loader (so both pay the same data loading).

Runs alternate which path goes first; the script prints samples per second of each, from the
median step time, and their ratio (rnnlab / plain).

Usage::

    RNNLAB_DATA=path/to/data python benchmarks/task_throughput.py etth1-gru fsdd-gru
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lm_throughput import train_timed
from rnnlab import config as configs
from rnnlab.tasks import TASKS


def median_rate(times: list[float], samples: list[float]) -> float:
    """Samples per second from the median step time (robust to a busy machine)."""
    steps = [b - a for a, b in itertools.pairwise(times)]
    return statistics.median(samples[1:]) / statistics.median(steps)


class PlainForecaster(nn.Module):
    """Channel-independent GRU: each channel's window through one GRU, a linear horizon head."""

    def __init__(self, hidden: int, horizon: int) -> None:
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, inputs: Tensor) -> Tensor:
        batch, length, channels = inputs.shape
        x = inputs.permute(0, 2, 1).reshape(batch * channels, length, 1)
        shift = x.mean(dim=1, keepdim=True)  # instance normalization "mean"
        _, h_n = self.gru(x - shift)
        out = self.head(h_n[-1]).unsqueeze(-1) + shift  # (B*C, H, 1)
        return out.reshape(batch, channels, -1).permute(0, 2, 1)  # (B, H, C)


class PlainDigits(nn.Module):
    """Bidirectional GRU over packed frames, mean over valid frames, linear classifier."""

    def __init__(self, features: int, hidden: int, layers: int, classes: int, p: float) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, layers, batch_first=True, bidirectional=True, dropout=p)
        self.dropout = nn.Dropout(p)
        self.proj = nn.Linear(2 * hidden, classes)

    def forward(self, features: Tensor, frames: Tensor) -> Tensor:
        lengths = frames.cpu()
        packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True)
        pooled = outputs.sum(dim=1) / frames[:, None].to(outputs.dtype)
        return self.proj(self.dropout(pooled))


def plain_run(recipe: str, overrides: list[str], steps: int, warmup: int) -> float:
    cfg = configs.load(recipe, overrides)
    torch.manual_seed(0)
    task = TASKS.get(cfg.task.name)(cfg)
    data = task.build_data()
    spec = data.spec
    if cfg.task.name == "forecasting":
        model: nn.Module = PlainForecaster(cfg.model.hidden_size, cfg.data.horizon)

        def loss_of(batch: Any) -> tuple[Tensor, float]:
            inputs, targets, _future = batch
            return F.mse_loss(model(inputs), targets), float(inputs.shape[0])

    else:
        model = PlainDigits(
            int(spec.num_features or 1),
            cfg.model.hidden_size,
            cfg.model.num_layers,
            int(spec.num_classes or 10),
            cfg.model.dropout,
        )

        def loss_of(batch: Any) -> tuple[Tensor, float]:
            features, frames, labels = batch
            return F.cross_entropy(model(features, frames), labels), float(labels.shape[0])

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    clip = cfg.train.grad_clip_norm or float("inf")
    times: list[float] = []
    samples: list[float] = []
    model.train()
    done = 0
    for epoch in itertools.count():
        data.train.set_epoch(epoch)
        for batch in data.train.batches():
            loss, count = loss_of(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            float(loss.detach())  # a sync per step, as the trainer's
            done += 1
            if done >= warmup:
                times.append(time.perf_counter())
                samples.append(count)
            if done >= warmup + steps:
                return median_rate(times, samples)
    raise AssertionError("unreachable")


def rnnlab_run(recipe: str, overrides: list[str], steps: int, warmup: int) -> float:
    total = warmup + steps
    clock = train_timed(recipe, [*overrides, f"train.eval_every_steps={total + 1}"], warmup, steps)
    return median_rate(clock.times, clock.samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+", choices=["etth1-gru", "fsdd-gru"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = [f"train.num_threads={args.threads}", "train.device=cpu"]
    for recipe in args.recipes:
        rates: dict[str, list[float]] = {"plain": [], "rnnlab": []}
        for repeat in range(args.repeats):
            order = ("plain", "rnnlab") if repeat % 2 == 0 else ("rnnlab", "plain")
            for path in order:
                run = plain_run if path == "plain" else rnnlab_run
                rates[path].append(run(recipe, overrides, args.steps, args.warmup))
        pairs = [o / p for o, p in zip(rates["rnnlab"], rates["plain"], strict=True)]
        print(
            f"{recipe}: plain torch.nn loop {max(rates['plain']):,.0f} samples/s, rnnlab "
            f"Trainer {max(rates['rnnlab']):,.0f} samples/s (best of {args.repeats}, median "
            f"step); ratio rnnlab / plain {max(rates['rnnlab']) / max(rates['plain']):.2f} "
            f"(median of paired ratios {statistics.median(pairs):.2f}); {args.threads} "
            "thread(s), CPU",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
