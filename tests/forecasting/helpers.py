"""Shared helpers for forecasting tests: a generated hourly series and a tiny trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import rnnlab.api as api
from rnnlab import config as cfg
from rnnlab.forecasting.run_files import META_FILE, SCALER_FILE

PERIOD = 10
ROWS = 400


def series(rows: int = ROWS + 30) -> pd.DataFrame:
    """Hourly ``y = 50 + 20 sin(2 pi t / 10)``, a past covariate ``x``; rows beyond ``ROWS``
    are the future the forecasts are checked against."""
    t = np.arange(rows, dtype=float)
    return pd.DataFrame(
        {
            "time": pd.date_range("2022-03-01", periods=rows, freq="h"),
            "y": 50.0 + 20.0 * np.sin(2 * np.pi * t / PERIOD),
            "x": np.cos(2 * np.pi * t / PERIOD),
        }
    )


def train_run(folder: Path, epochs: int = 8, **data: Any) -> Path:
    """A trained Gaussian GRU run (input 20, horizon 5) with hour-of-day calendar features,
    on the first ``ROWS`` rows of :func:`series`; returns its run directory. ``data``
    overrides keys of the ``[data]`` section (``fill="ffill"``, ``future_covariates=...``)."""
    path = folder / "train.csv"
    series().iloc[:ROWS].to_csv(path, index=False)
    config = cfg.from_dict(
        {
            "task": {"name": "forecasting"},
            "data": {
                "path": str(path),
                "targets": ["y"],
                "past_covariates": ["x"],
                "calendar": ["hour"],
                "input_length": 20,
                "horizon": 5,
                "period": PERIOD,
                "instance_norm": "mean",
                "gaussian": True,
                **data,
            },
            "model": {"cell": "gru", "hidden_size": 24},
            "train": {
                "epochs": epochs,
                "batch_size": 32,
                "lr": 0.01,
                "num_threads": 1,
                "device": "cpu",
                "monitor": "mse",
            },
        }
    )
    run = folder / "run"
    api.train(config, run_dir=run, quiet=None)
    # training itself writes the run files (Task.prepare_run_dir), before any forecast
    assert (run / SCALER_FILE).is_file() and (run / META_FILE).is_file()
    return run


def recent(folder: Path, end: int = ROWS, rows: int = 30, name: str = "recent.csv") -> Path:
    """The ``rows`` rows of :func:`series` before row ``end``, written to ``folder/name``."""
    path = folder / name
    series().iloc[end - rows : end].to_csv(path, index=False)
    return path
