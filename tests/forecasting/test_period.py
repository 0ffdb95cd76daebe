"""The seasonal period inferred from the frequency (pandas 3: ``Day`` is no longer a
``Tick``), and the warning when a sub-yearly series gets period 1."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnlab import config as cfg
from rnnlab.forecasting.baselines import seasonal_period
from rnnlab.forecasting.task import ForecastingTask


@pytest.mark.parametrize(
    ("freq", "period"),
    [("7D", 52), ("W", 52), ("W-SUN", 52), ("D", 7), ("1D", 7), ("h", 24), ("30min", 48)],
)
def test_natural_periods(freq: str, period: int) -> None:
    assert seasonal_period(freq) == period


def weekly_task(tmp_path: Path, freq: str, rows: int, **data: object) -> ForecastingTask:
    frame = pd.DataFrame(
        {
            "time": pd.date_range("2000-01-02", periods=rows, freq=freq),
            "y": np.sin(np.arange(rows) / 3.0),
        }
    )
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    config = cfg.from_dict(
        {
            "task": {"name": "forecasting"},
            "data": {"path": str(path), "input_length": 60, "horizon": 4, **data},
            "model": {"cell": "gru", "hidden_size": 4},
            "train": {"device": "cpu", "num_threads": 1, "epochs": 1},
        }
    )
    return ForecastingTask(config)


def test_weekly_series_gets_52_through_the_task(tmp_path: Path) -> None:
    task = weekly_task(tmp_path, "7D", 400)
    task.prepare()
    assert task.forecast_data is not None and task.forecast_data.series.freq == "7D"
    assert task.period == 52


def test_period_one_on_a_sub_yearly_series_warns(tmp_path: Path) -> None:
    task = weekly_task(tmp_path, "2D", 400)
    with pytest.warns(UserWarning, match="data.period"):
        task.prepare()
    assert task.period == 1
    quiet = weekly_task(tmp_path, "2D", 400, period=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.prepare()
    assert quiet.period == 3
