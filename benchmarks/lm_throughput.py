"""Training throughput of the ptb-small language model: rnnlab's Trainer against a plain loop.

Both paths train Zaremba et al.'s small PTB model (2 x LSTM 200, vocabulary 10,000, batch 20,
BPTT 20, SGD lr 1, gradient norm clipped at 5, weights uniform in [-0.1, 0.1]) on the same
token stream for the same number of steps:

- rnnlab: ``rnnlab.api.train`` on the ``ptb-small`` recipe (the real Trainer and the
  ``language`` task), timed by a callback between the end of step ``warmup`` and the end of
  the last step (evaluation and checkpoints fall outside the window);
- plain: ``torch.nn.Embedding`` + ``torch.nn.LSTM`` + ``torch.nn.Linear`` and a hand-written
  truncated-BPTT loop (batchify, windows, detach, clip, step), written here.

Runs come in pairs, the first path alternating, so that a change of machine load hits both;
for each path the best run is reported, from the whole timed window and from the median step
time (robust to other programs taking the CPU), with the ratio rnnlab / plain (target >= 0.95).

Usage::

    RNNLAB_DATA=../shared/data python benchmarks/lm_throughput.py --steps 200 --threads 1
    python benchmarks/lm_throughput.py --synthetic      # random tokens, no data needed
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab import api
from rnnlab.data import datasets
from rnnlab.data.text import load_named_corpus
from rnnlab.training.callbacks import Callback, StepInfo

VOCAB, HIDDEN, LAYERS, BATCH, BPTT, LR, CLIP, INIT = 10_000, 200, 2, 20, 20, 1.0, 5.0, 0.1


class StepClock(Callback):
    """Wall time and samples (or tokens) at the end of every step from ``warmup`` to ``last``."""

    name = "step_clock"

    def __init__(self, warmup: int, last: int) -> None:
        self.warmup, self.last = warmup, last
        self.times: list[float] = []
        self.samples: list[float] = []

    def on_step_end(self, trainer: Any, info: StepInfo) -> None:
        if self.warmup <= info.step <= self.last:
            self.times.append(time.perf_counter())
            self.samples.append(info.count)


def rates(times: list[float]) -> tuple[float, float]:
    """Tokens per second over the whole window, and from the median step time.

    The median is robust to other programs taking the CPU for a while, which on a shared
    machine swings the mean by tens of percent from one run to the next.
    """
    tokens = BATCH * BPTT
    steps = [b - a for a, b in itertools.pairwise(times)]
    return tokens * len(steps) / (times[-1] - times[0]), tokens / statistics.median(steps)


def write_corpus(folder: Path, synthetic: bool, root: str | None) -> None:
    """A corpus directory: PTB's train file (or random words) and short valid/test files.

    The vocabulary comes from train alone, so it is PTB's; the short evaluation files only
    keep the trainer's end-of-run evaluation quick (it is outside the timed window anyway).
    """
    if synthetic:
        generator = torch.Generator().manual_seed(0)
        words = [f"w{i}" for i in range(VOCAB - 2)]
        ids = torch.randint(len(words), (200_000,), generator=generator).tolist()
        lines = [" ".join(words[i] for i in ids[k : k + 20]) for k in range(0, len(ids), 20)]
        (folder / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        short = "\n".join(lines[:200]) + "\n"
    else:
        source = datasets.locate("ptb", root)
        shutil.copy(source / "ptb.train.txt", folder / "train.txt")
        short = "".join((source / "ptb.valid.txt").read_text("utf-8").splitlines(True)[:200])
    (folder / "valid.txt").write_text(short, encoding="utf-8")
    (folder / "test.txt").write_text(short, encoding="utf-8")


def train_timed(recipe: str, overrides: list[str], warmup: int, steps: int) -> StepClock:
    """Train ``recipe`` through ``rnnlab.api.train`` for ``warmup + steps`` steps, timed.

    Checkpoints and logs are pushed past the end, so only training steps are measured.
    """
    total = warmup + steps
    clock = StepClock(warmup, total)
    with tempfile.TemporaryDirectory() as run_dir:
        api.train(
            recipe,
            overrides=[
                *overrides,
                "train.epochs=none",
                f"train.max_steps={total}",
                f"train.checkpoint_every={total + 1}",
                f"train.log_every_steps={total + 1}",
            ],
            run_dir=Path(run_dir) / "run",
            quiet=None,
            callbacks=[clock],
        )
    return clock


def run_rnnlab(
    corpus: Path, steps: int, warmup: int, threads: int, device: str
) -> tuple[float, float]:
    """Tokens per second (mean, median-step) of ``rnnlab.api.train`` on the ptb-small recipe."""
    overrides = [
        "data.corpus=none",
        f"data.path={corpus}",
        "data.test_batch_size=10",
        f"train.num_threads={threads}",
        f"train.device={device}",
    ]
    return rates(train_timed("ptb-small", overrides, warmup, steps).times)


class PlainLM(nn.Module):
    """Embedding, torch.nn.LSTM and a linear decoder: the reference model."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, HIDDEN)
        self.lstm = nn.LSTM(HIDDEN, HIDDEN, LAYERS)
        self.decoder = nn.Linear(HIDDEN, VOCAB)
        for param in self.parameters():
            nn.init.uniform_(param, -INIT, INIT)

    def forward(
        self, tokens: Tensor, state: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        output, state = self.lstm(self.embedding(tokens), state)  # (L, B, H)
        return self.decoder(output), state  # (L, B, V)


def run_plain(
    train: Tensor, steps: int, warmup: int, threads: int, device: str
) -> tuple[float, float]:
    """Tokens per second (mean, median-step) of a plain truncated-BPTT loop, same tokens."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    target = torch.device(device)
    rows = train.numel() // BATCH
    streams = train[: rows * BATCH].view(BATCH, rows).t().contiguous().to(target)  # (T, B)
    model = PlainLM().to(target)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    state: tuple[Tensor, Tensor] | None = None
    total_loss = 0.0
    times: list[float] = []
    row = 0
    for step in range(warmup + steps):
        if row + BPTT + 1 > rows:
            row, state = 0, None  # a new epoch
        inputs = streams[row : row + BPTT]  # (L, B)
        targets = streams[row + 1 : row + 1 + BPTT]  # (L, B)
        row += BPTT
        logits, state = model(inputs, state)
        state = (state[0].detach(), state[1].detach())
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        total_loss += loss.item()  # a sync per step, as the trainer's float(loss)
        if step + 1 >= warmup:
            times.append(time.perf_counter())
    return rates(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each path")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--root", default=None, help="data root (default $RNNLAB_DATA)")
    parser.add_argument("--synthetic", action="store_true", help="random words, no PTB")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        write_corpus(corpus, args.synthetic, args.root)
        train = load_named_corpus("ptb", args.root).train if not args.synthetic else None
        if train is None:
            from rnnlab.data.text import load_corpus

            train = load_corpus(corpus, "word").train
        results: dict[str, list[tuple[float, float]]] = {"plain": [], "rnnlab": []}
        for repeat in range(args.repeats):
            order = ("plain", "rnnlab") if repeat % 2 == 0 else ("rnnlab", "plain")
            for path in order:  # alternate which path goes first
                if path == "plain":
                    rate = run_plain(train, args.steps, args.warmup, args.threads, args.device)
                else:
                    rate = run_rnnlab(corpus, args.steps, args.warmup, args.threads, args.device)
                results[path].append(rate)
            plain, ours = results["plain"][-1], results["rnnlab"][-1]
            print(
                f"run {repeat + 1} ({order[0]} first): plain {plain[0]:,.0f} tokens/s "
                f"(median step {plain[1]:,.0f})  rnnlab {ours[0]:,.0f} tokens/s "
                f"(median step {ours[1]:,.0f})  ratio {ours[0] / plain[0]:.3f} "
                f"(median step {ours[1] / plain[1]:.3f})",
                flush=True,
            )
    data = "synthetic tokens" if args.synthetic else "PTB train"
    print(
        f"ptb-small (2 x LSTM {HIDDEN}, V {VOCAB}, B {BATCH}, BPTT {BPTT}), {data}, "
        f"device {args.device}, {args.threads} thread(s), {args.steps} timed steps "
        f"after {args.warmup}, {args.repeats} paired runs"
    )
    for kind, index in (("whole-window", 0), ("median-step", 1)):
        best_plain = max(r[index] for r in results["plain"])
        best_ours = max(r[index] for r in results["rnnlab"])
        pairs = zip(results["rnnlab"], results["plain"], strict=True)
        median = statistics.median(o[index] / p[index] for o, p in pairs)
        print(
            f"{kind:>12} tokens/s, best run: plain torch.nn loop {best_plain:,.0f}, "
            f"rnnlab Trainer {best_ours:,.0f}; ratio rnnlab / plain {best_ours / best_plain:.3f} "
            f"(median of paired ratios {median:.3f}; target >= 0.95)"
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
