"""Tuning benchmark: an Optuna study on the adding problem, with pruning and without.

Runs the shipped ``adding`` search space (learning rate, batch size, clipping, cell, width,
LSTM projection) on the adding problem at T = 100 for ``--trials`` trials twice, with the
median pruner and with none, seeds equal, and trains the recipe's default config with the
same per-trial budget. Prints, measured in this run: the best validation MSE of each study
beside the default config's, the number of pruned trials, and the wall time of each.
Predicting the mean scores MSE 1/6 ~ 0.167.

Usage:
    python benchmarks/tune_adding.py [--trials 30] [--length 100] [--out benchmarks-out/tune]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import rnnlab
from rnnlab.tuning import tune
from timing import timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2, help="training budget of every trial")
    parser.add_argument("--out", default="benchmarks-out/tune")
    parser.add_argument(
        "--pruners", nargs="+", default=["median", "none"], help="e.g. median median:256 none"
    )
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    common = [
        f"data.length={args.length}",
        f"train.epochs={args.epochs}",
        "train.eval_every_steps=32",  # several reports per trial for the pruner
        f"output.dir={out}",
    ]

    default, default_seconds = timed(
        lambda: rnnlab.train("adding", overrides=common, run_dir=out / "default", quiet=None)
    )
    rows = [("recipe default (LSTM 32, lr 0.01)", default.best, "-", "-", default_seconds)]

    for pruner in args.pruners:
        result, seconds = timed(
            lambda pruner=pruner: tune(
                "adding",
                "adding",
                trials=args.trials,
                overrides=common,
                study_name=f"adding-{pruner.replace(':', '-')}",
                study_dir=out / f"study-{pruner.replace(':', '-')}",
                pruner=pruner,
                seed=0,
                plots=False,
            )
        )
        rows.append(
            (
                f"study, {args.trials} trials, pruner={pruner}",
                result.best_value,
                str(result.counts.get("complete", 0)),
                str(result.counts.get("pruned", 0)),
                seconds,
            )
        )
        print(f"best params ({pruner}): {result.best_params}", flush=True)

    print(
        f"\nadding problem T={args.length}, {args.epochs} epochs per run, valid MSE (mean: 0.167)"
    )
    print(f"{'run':42} {'best valid MSE':>15} {'complete':>9} {'pruned':>7} {'wall s':>8}")
    for name, value, complete, pruned, seconds in rows:
        shown = "-" if value is None else f"{value:.5f}"
        print(f"{name:42} {shown:>15} {complete:>9} {pruned:>7} {seconds:>8.0f}")


if __name__ == "__main__":
    main()
