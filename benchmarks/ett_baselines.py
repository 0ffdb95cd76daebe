"""ETT baselines under the long-horizon protocol: naive, seasonal naive, closed-form (D)Linear.

Protocol (Informer / Autoformer / DLinear code): multivariate (all 7 columns in and out),
z-score fitted on the 12 training months, train/valid/test = 12/4/4 months of 30 days,
every test window (stride 1), MSE and MAE on the z-scored data, averaged over all windows,
steps and channels. The linear baseline is fitted by least squares on the training windows
(no gradient descent, no validation), one map shared by all channels.

For reference, the published DLinear paper (Zeng et al. 2023, Table 2) reports on ETTh1, with
input 336: DLinear 0.375 / 0.405 / 0.439 / 0.472 and NLinear 0.374 / 0.408 / 0.429 / 0.440
(MSE at horizons 96 / 192 / 336 / 720). At input 96, later papers (e.g. iTransformer, Liu et
al. 2024) report DLinear 0.386 / 0.437 / 0.481 / 0.519. Some of that code drops the last
incomplete test batch (``drop_last=True``); this script scores every test window.

Run::

    python benchmarks/ett_baselines.py                    # ETTh1, input 96
    python benchmarks/ett_baselines.py --input-length 336 --data path/to/ETTh2.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rnnlab.data.series import (
    ett_rows_per_hour,
    ett_split,
    load_series,
    prepare_forecast_data,
)
from rnnlab.forecasting import (
    LinearForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    backtest,
    seasonal_period,
)

HORIZONS = (96, 192, 336, 720)
REPO = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    for root in (REPO / "shared" / "data", REPO.parent / "shared" / "data"):
        if (root / "ett" / "ETTh1.csv").is_file():
            return root / "ett" / "ETTh1.csv"
    raise SystemExit("ETTh1.csv not found under shared/data/ett; pass --data PATH")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="an ETT CSV (default: ETTh1)")
    parser.add_argument("--input-length", type=int, default=96)
    parser.add_argument("--horizons", type=int, nargs="+", default=list(HORIZONS))
    parser.add_argument("--ridge", type=float, default=0.0, help="LinearForecaster ridge")
    args = parser.parse_args()
    path = args.data or default_data()
    series = load_series(path)
    split = ett_split(len(series), ett_rows_per_hour(series.freq))
    period = seasonal_period(series.freq)
    print(f"{path.name}: {len(series)} rows, freq {series.freq}, split {split}")
    print(f"input_length={args.input_length}, multivariate {len(series.target_names)} columns")
    print(f"{'model':<26}" + "".join(f"{'H=' + str(h):>16}" for h in args.horizons))
    rows: dict[str, list[str]] = {}
    for horizon in args.horizons:
        data = prepare_forecast_data(series, split, args.input_length, horizon)
        start = time.perf_counter()
        models = {
            "naive": NaiveForecaster(horizon),
            f"seasonal naive ({period})": SeasonalNaiveForecaster(horizon, period),
            "linear (OLS)": LinearForecaster(
                args.input_length, horizon, decomposition=False, ridge=args.ridge
            ).fit(data.train),
            "DLinear closed form": LinearForecaster(
                args.input_length, horizon, decomposition=True, ridge=args.ridge
            ).fit(data.train),
        }
        for name, model in models.items():
            metrics = backtest(model, data).metrics
            rows.setdefault(name, []).append(f"{metrics['mse']:.3f}/{metrics['mae']:.3f}")
        rows.setdefault("(seconds)", []).append(f"{time.perf_counter() - start:.1f}")
    for name, cells in rows.items():
        print(f"{name:<26}" + "".join(f"{cell:>16}" for cell in cells))
    print("cells: test MSE/MAE on z-scored data, every test window")


if __name__ == "__main__":
    main()
