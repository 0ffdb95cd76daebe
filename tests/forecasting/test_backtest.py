"""Rolling-origin backtest on a small synthetic series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rnnlab.data.series import Split, prepare_forecast_data, series_from_frame
from rnnlab.forecasting import NaiveForecaster, backtest


def make_data(horizon: int = 2):  # type: ignore[no-untyped-def]
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2021-01-01", periods=30, freq="D"),
            "y": np.arange(30, dtype=float) ** 1.5,
        }
    )
    series = series_from_frame(frame)
    split = Split(train=(0, 15), valid=(15, 20), test=(20, 30))
    return prepare_forecast_data(series, split, input_length=3, horizon=horizon)


def test_naive_backtest_matches_hand_computation() -> None:
    data = make_data()
    result = backtest(NaiveForecaster(2), data, stride=3)
    # origins at test rows 20, 23, 26 (windows 0, 3, 6 of 9)
    assert result.origins.tolist() == [20, 23, 26]
    assert result.timestamps[0] == pd.Timestamp("2021-01-21")
    y = np.arange(30, dtype=float) ** 1.5
    errors = np.array([[y[t] - y[t - 1], y[t + 1] - y[t - 1]] for t in (20, 23, 26)])
    assert result.metrics["mae_original"] == pytest.approx(np.abs(errors).mean())
    scale = np.abs(np.diff(y[:15])).mean()  # daily series: period 7
    scale7 = np.abs(y[7:15] - y[:8]).mean()
    assert scale != scale7
    assert result.metrics["mase"] == pytest.approx(np.abs(errors).mean() / scale7)
    assert result.per_step["mae"].shape == (2,)


def test_probabilistic_forecaster_gets_coverage() -> None:
    data = make_data()

    def wide(x: torch.Tensor, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = x[:, -1:, :1].expand(-1, 2, -1)
        return mean, torch.full_like(mean, 1e6)

    result = backtest(wide, data)
    assert result.metrics["coverage"] == 1.0
    assert result.variances is not None


def test_wrong_output_shape_is_an_error() -> None:
    data = make_data()
    with pytest.raises(ValueError, match="expected"):
        backtest(lambda x, f: x, data)
