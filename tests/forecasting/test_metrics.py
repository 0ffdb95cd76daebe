"""Metrics on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnlab.data.series import Scaler
from rnnlab.forecasting import coverage, forecast_metrics, mae, mase, mse, smape
from rnnlab.forecasting.metrics import UndefinedMetricError, seasonal_naive_scale


def test_mse_mae_hand_worked() -> None:
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.array([[1.0, 0.0], [0.0, 4.0]])
    assert mse(pred, target) == pytest.approx((0 + 4 + 9 + 0) / 4)
    assert mae(torch.tensor(pred), torch.tensor(target)) == pytest.approx((0 + 2 + 3 + 0) / 4)
    with pytest.raises(ValueError, match="same shape"):
        mse(pred, target[:1])


def test_smape_hand_worked() -> None:
    # 200*|100-50|/150 = 66.67; 200*|0-0|/0 -> 0; 200*|10-(-10)|/20 = 200
    value = smape(np.array([100.0, 0.0, 10.0]), np.array([50.0, 0.0, -10.0]))
    assert value == pytest.approx((200 * 50 / 150 + 0 + 200) / 3)


def test_mase_uses_seasonal_naive_in_sample_scale() -> None:
    train = np.array([[1.0, 0.0], [2.0, 0.0], [4.0, 3.0], [5.0, 3.0]])
    # period 2: channel 0 |4-1|, |5-2| -> 3; channel 1 |3-0|, |3-0| -> 3
    assert seasonal_naive_scale(train, 2).tolist() == [3.0, 3.0]
    pred = np.array([[3.0, 6.0]])
    target = np.array([[0.0, 0.0]])
    assert mase(pred, target, train, period=2) == pytest.approx((1.0 + 2.0) / 2)
    with pytest.raises(ValueError, match="undefined"):
        seasonal_naive_scale(np.ones((5, 1)), 1)


def test_coverage() -> None:
    assert coverage(np.zeros(4), np.ones(4), np.array([0.0, 0.5, 1.0, 2.0])) == 0.75


def test_forecast_metrics_scaled_and_original_units() -> None:
    scaler = Scaler().fit(np.array([[0.0, 10.0], [2.0, 30.0]]), names=["a", "b"])  # std 1, 10
    pred = np.array([[1.0]])
    target = np.array([[0.0]])
    m = forecast_metrics(pred, target, scaler=scaler, target_names=["b"])
    assert m["mse"] == 1.0 and m["mae"] == 1.0
    assert m["mse_original"] == pytest.approx(100.0) and m["mae_original"] == pytest.approx(10.0)
    # original: pred 30, target 20 -> 200 * 10 / 50
    assert m["smape"] == pytest.approx(40.0)
    assert "mase" not in m and "coverage" not in m


def test_forecast_metrics_leave_out_mase_where_the_series_repeats_exactly() -> None:
    constant = np.zeros((50, 1))
    with pytest.raises(UndefinedMetricError, match="MASE is undefined: channel 0"):
        seasonal_naive_scale(constant)
    result = forecast_metrics(np.ones((4, 3, 1)), np.zeros((4, 3, 1)), insample=constant)
    assert "mase" not in result and result["mse"] == 1.0 and result["mae"] == 1.0
    varying = np.arange(50.0)[:, None]
    assert forecast_metrics(np.ones((4, 3, 1)), np.zeros((4, 3, 1)), insample=varying)[
        "mase"
    ] == pytest.approx(1.0)


def test_compact_metrics_keep_the_headline_under_short_names() -> None:
    from rnnlab.forecasting.metrics import compact_metrics

    full = {"mse": 0.4, "mae": 0.5, "mse_original": 50.0, "smape": 14.0, "mase": 0.9,
            "loss": 0.4, "baseline_naive_mse": 1.9, "baseline_linear_mse": 0.38,
            "baseline_linear_mase": 0.6, "baseline_seasonal_naive_mse": 0.07}  # fmt: skip
    short = compact_metrics(full)
    assert short == {"mse": 0.4, "mae": 0.5, "mase": 0.9, "linear_mse": 0.38, "snaive_mse": 0.07}
    assert compact_metrics({"loss": 1.0}) == {}
