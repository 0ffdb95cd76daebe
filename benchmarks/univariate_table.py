"""Classic univariate series: MASE of rnnlab's forecaster against naive, linear, ETS, ARIMA.

For each series of ``<data>/timeseries`` (airline passengers, sunspots, Melbourne daily
temperatures, births, car and champagne sales, Nottingham temperature, robberies, water use)
this trains rnnlab's recurrent forecaster (a GRU with a direct multi-step head and per-window
mean normalization, the template of the shipped ``airline-gru`` recipe) with a chronological
train / valid / test split, early-stopped on the validation MSE, and reads from the run's test
record its MASE beside the naive, seasonal-naive and linear baselines that the run scores on
the same test windows (rolling origins every ``eval_stride`` rows). MASE divides the test MAE
by the in-sample MAE of the seasonal-naive forecast on the training rows (original units), so
seasonal naive itself is near, not at, 1.

Where ``statsforecast`` is installed (``pip install rnnlab[bench]``), AutoETS and AutoARIMA
(season = the same period) are scored on exactly the same origins with the same metric
(:meth:`rnnlab.forecasting.task.ForecastingTask.backtest`): at each origin they are fitted on
the history before it (original units, at most ``--max-history`` rows, so the long daily series
stay affordable) and forecast the horizon; that is more history than the model's input window,
as is usual for these methods.

Run::

    RNNLAB_DATA=path/to/data python benchmarks/univariate_table.py
    RNNLAB_DATA=path/to/data python benchmarks/univariate_table.py --series airline,births
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rnnlab.api as api
from rnnlab import config as cfg
from rnnlab.forecasting.task import ForecastingTask
from rnnlab.training.metrics_log import read_metrics

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "univariate_table"


@dataclass(frozen=True)
class Spec:
    """One series and how it is cut: window, horizon, season, split, evaluation stride."""

    name: str
    file: str
    target: str
    input_length: int
    horizon: int
    period: int
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    eval_stride: int = 1
    epochs: int = 150
    batch_size: int = 16
    patience: int = 25


SERIES = (
    Spec("airline", "airline-passengers.csv", "Passengers", 24, 12, 12, (0.67, 0.16, 0.17)),
    Spec("sunspots", "monthly-sunspots.csv", "Sunspots", 72, 12, 12, eval_stride=12,
         epochs=15, batch_size=64, patience=4),
    Spec("min-temperatures", "daily-min-temperatures.csv", "Temp", 60, 14, 7, eval_stride=14,
         epochs=15, batch_size=64, patience=4),
    Spec("max-temperatures", "daily-max-temperatures.csv", "Temperature", 60, 14, 7,
         eval_stride=14, epochs=15, batch_size=64, patience=4),
    Spec("births", "daily-total-female-births.csv", "Births", 28, 7, 7),
    Spec("car-sales", "monthly-car-sales.csv", "Sales", 24, 12, 12, (0.6, 0.15, 0.25)),
    Spec("champagne", "monthly_champagne_sales.csv", "Sales", 24, 12, 12, (0.6, 0.15, 0.25)),
    Spec("nottingham-temp", "monthly-mean-temp.csv", "Temperature", 24, 12, 12),
    Spec("robberies", "monthly-robberies.csv", "Robberies", 24, 12, 12, (0.6, 0.15, 0.25)),
    Spec("water-usage", "yearly-water-usage.csv", "Water", 10, 5, 1, (0.6, 0.15, 0.25)),
)  # fmt: skip


def data_root(given: Path | None) -> Path:
    """The folder holding ``timeseries/``: ``--data``, ``$RNNLAB_DATA`` or ``shared/data``."""
    candidates = [given] if given else []
    if os.environ.get("RNNLAB_DATA"):
        candidates.append(Path(os.environ["RNNLAB_DATA"]))
    candidates += [REPO / "shared" / "data", REPO.parent / "shared" / "data"]
    for root in candidates:
        if root is not None and (root / "timeseries").is_dir():
            return root
    raise SystemExit("no timeseries/ folder found; pass --data PATH or set RNNLAB_DATA")


def config_for(spec: Spec, root: Path, seed: int, overrides: Sequence[str] = ()) -> Any:
    """The rnnlab experiment config of one series (``overrides``: ``section.key=value``)."""
    train, valid, test = spec.fractions
    raw = {
        "task": {"name": "forecasting"},
        "data": {
            "path": str(root / "timeseries" / spec.file),
            "targets": [spec.target],
            "split": "fraction",
            "train_fraction": train,
            "valid_fraction": valid,
            "test_fraction": test,
            "input_length": spec.input_length,
            "horizon": spec.horizon,
            "period": spec.period,
            "eval_stride": spec.eval_stride,
            "instance_norm": "mean",
        },
        "model": {"cell": "gru", "hidden_size": 32},
        "train": {
            "optimizer": "adam",
            "lr": 0.005,
            "batch_size": spec.batch_size,
            "epochs": spec.epochs,
            "grad_clip_norm": 1.0,
            "monitor": "mse",
            "seed": seed,
            "device": "cpu",
            "num_threads": 1,
            "early_stopping": {"patience": spec.patience},
        },
    }
    return cfg.from_dict(cfg.apply_overrides(raw, list(overrides)))


class HistoryForecaster:
    """A statsforecast model refitted at each backtest origin on the history before it.

    The backtest calls it with the windows of consecutive origins in order; it walks the
    same list of origins, checks that each window ends where the history does, and returns
    the forecast in the scaled units the backtest scores.
    """

    def __init__(self, make: Any, task: ForecastingTask, stride: int, max_history: int) -> None:
        fd = task.prepare()
        self.make, self.max_history, self.fd = make, max_history, fd
        self.origins = list(fd.part("test").origins[::stride])
        self.history = fd.series.targets[:, 0].astype(np.float64)  # original units
        self.horizon = fd.horizon
        self.position = 0

    def __call__(self, inputs: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        out = np.empty((inputs.shape[0], self.horizon, 1))
        for row in range(inputs.shape[0]):
            origin = int(self.origins[self.position])
            self.position += 1
            last = self.fd.to_original(inputs[row, -1:, :1])[0, 0]
            if not np.isclose(last, self.history[origin - 1], rtol=1e-4, atol=1e-4):
                raise RuntimeError("window and origin disagree: the backtest order changed")
            y = self.history[max(0, origin - self.max_history) : origin]
            mean = np.asarray(self.make().forecast(y=y, h=self.horizon)["mean"], dtype=float)
            assert self.fd.scaler is not None
            out[row, :, 0] = self.fd.scaler.transform(mean[:, None], self.fd.target_names)[:, 0]
        return torch.as_tensor(out)


def statistical_mase(task: ForecastingTask, spec: Spec, max_history: int) -> dict[str, float]:
    """AutoETS and AutoARIMA MASE on the run's test origins ({} without statsforecast)."""
    try:
        from statsforecast.models import AutoARIMA, AutoETS
    except ImportError:
        return {}
    season = spec.period
    models = {
        "auto_ets": lambda: AutoETS(season_length=season),
        "auto_arima": lambda: AutoARIMA(season_length=season),
    }
    scores: dict[str, float] = {}
    for name, make in models.items():
        forecaster = HistoryForecaster(make, task, spec.eval_stride, max_history)
        try:
            scores[name] = task.backtest(forecaster, "test").metrics["mase"]
        except Exception as err:  # a fit that fails on one series is reported, not fatal
            print(f"  {spec.name}: {name} failed ({type(err).__name__}: {err})")
            scores[name] = float("nan")
    return scores


def eval_records(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The evaluation records of a run's ``metrics.jsonl`` by split (valid, test), in order."""
    by_split: dict[str, list[dict[str, Any]]] = {"valid": [], "test": []}
    for record in read_metrics(run_dir / "metrics.jsonl"):
        if record.get("kind") == "eval" and record.get("split") in by_split:
            by_split[record["split"]].append(record)
    for split, found in by_split.items():
        if not found:
            raise SystemExit(f"{run_dir}: no {split} record")
    return by_split


def measure(
    spec: Spec,
    root: Path,
    runs: Path,
    seed: int,
    max_history: int,
    overrides: Sequence[str],
    stats: bool = True,
) -> dict[str, Any]:
    """Train on one series and score everything on its test origins."""
    config = config_for(spec, root, seed, overrides)
    run_dir = runs / spec.name
    start = time.perf_counter()
    api.train(config, run_dir=run_dir, quiet=None)
    wall = time.perf_counter() - start
    evals = eval_records(run_dir)
    record = evals["test"][-1]
    # the validation record with the lowest MSE is the one that chose best.pt
    chosen = min(evals["valid"], key=lambda r: r["mse"])
    task = ForecastingTask(config)
    fd = task.prepare()
    row: dict[str, Any] = {
        "series": spec.name,
        "rows": len(fd.series),
        "input": spec.input_length,
        "horizon": spec.horizon,
        "period": spec.period,
        "origins": len(fd.part("test").origins[:: spec.eval_stride]),
        "rnnlab": record["mase"],
        "seasonal_naive": record["baseline_seasonal_naive_mase"],
        "naive": record["baseline_naive_mase"],
        "linear": record["baseline_linear_mase"],
        "valid_rnnlab": chosen["mase"],
        "valid_seasonal_naive": chosen["baseline_seasonal_naive_mase"],
        "train_s": round(wall, 1),
    }
    if not stats:
        return row
    start = time.perf_counter()
    row |= statistical_mase(task, spec, max_history)
    if "auto_ets" in row:
        row["stats_s"] = round(time.perf_counter() - start, 1)
    return row


COLUMNS = ("series", "rows", "input", "horizon", "period", "origins", "rnnlab", "seasonal_naive",
           "naive", "linear", "auto_ets", "auto_arima", "valid_rnnlab", "valid_seasonal_naive",
           "train_s", "stats_s")  # fmt: skip


def render(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown table and where rnnlab is not ahead."""

    def cell(column: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "—"
        if column.endswith("_s"):
            return f"{value:.0f}"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(c, row.get(c)) for c in COLUMNS) + " |" for row in rows]
    behind_snaive = [r["series"] for r in rows if r["rnnlab"] >= r["seasonal_naive"]]
    behind_linear = [r["series"] for r in rows if r["rnnlab"] >= r["linear"]]
    lines += [
        "",
        "MASE on the test origins (lower is better). rnnlab not below seasonal naive on: "
        + (", ".join(behind_snaive) or "none")
        + "; not below the linear baseline on: "
        + (", ".join(behind_linear) or "none")
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder holding timeseries/")
    parser.add_argument("--series", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="path stem of .csv / .md")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-history", type=int, default=600)
    parser.add_argument("--no-stats", action="store_true", help="skip AutoETS and AutoARIMA")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[],
        help="override the template config, section.key=value (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    root = data_root(args.data)
    names = {s.name for s in SERIES}
    wanted = [n.strip() for n in args.series.split(",")] if args.series else sorted(names)
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise SystemExit(f"--series: unknown {unknown}; expected some of {sorted(names)}")
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for spec in SERIES:
            if spec.name in wanted:
                rows.append(
                    measure(spec, root, Path(runs), args.seed, args.max_history, args.overrides,
                            stats=not args.no_stats)
                )  # fmt: skip
                print(f"{spec.name}: " + ", ".join(f"{k} {v}" for k, v in rows[-1].items()),
                      flush=True)  # fmt: skip
    with args.out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    table = render(rows)
    args.out.with_suffix(".md").write_text(table)
    print(table, end="")


if __name__ == "__main__":
    main()
