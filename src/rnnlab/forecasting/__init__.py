"""Forecasting without a training loop: baselines, metrics and the rolling-origin backtest."""

from rnnlab.forecasting.backtest import BacktestResult, backtest
from rnnlab.forecasting.baselines import (
    LinearForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    seasonal_period,
)
from rnnlab.forecasting.metrics import (
    coverage,
    forecast_metrics,
    mae,
    mase,
    mse,
    seasonal_naive_scale,
    smape,
)

__all__ = [
    "BacktestResult",
    "LinearForecaster",
    "NaiveForecaster",
    "SeasonalNaiveForecaster",
    "backtest",
    "coverage",
    "forecast_metrics",
    "mae",
    "mase",
    "mse",
    "seasonal_naive_scale",
    "seasonal_period",
    "smape",
]
