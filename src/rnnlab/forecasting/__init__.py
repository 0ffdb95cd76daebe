"""The forecasting wing: the task, the model, baselines, metrics, backtest and prediction.

One module per concept:

- :mod:`~rnnlab.forecasting.settings`: ``[data]`` of the task (:class:`ForecastingData`);
- :mod:`~rnnlab.forecasting.task`: the registered ``forecasting`` task
  (:class:`ForecastingTask`) and its evaluation batches;
- :mod:`~rnnlab.forecasting.model`: :class:`RNNForecaster` (direct or seq2seq head,
  instance normalization, Gaussian head), :class:`ChannelIndependent`, the loss;
- :mod:`~rnnlab.forecasting.segment_model`: :class:`SegmentForecaster` (segment-wise
  recurrence, parallel multi-step decoding; ``data.decoder = "segments"``);
- :mod:`~rnnlab.forecasting.normalization`: :class:`InstanceNorm` (last, mean, meanstd,
  RevIN);
- :mod:`~rnnlab.forecasting.baselines`: naive, seasonal naive, (D)Linear;
- :mod:`~rnnlab.forecasting.metrics`: MSE, MAE, sMAPE, MASE, coverage;
- :mod:`~rnnlab.forecasting.backtest`: the rolling-origin backtest of any forecaster;
- :mod:`~rnnlab.forecasting.run_files`: ``scaler.json`` and ``forecast.json`` of a run;
- :mod:`~rnnlab.forecasting.predict`: :func:`forecast` with a trained run
  (``rnnlab forecast``), :func:`load_run`;
- :mod:`~rnnlab.forecasting.recent_rows`: the input rows a forecast starts from (columns,
  missing values and timestamps, known-future rows);
- :mod:`~rnnlab.forecasting.plots`: the history-and-forecast picture.
"""

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
from rnnlab.forecasting.model import (
    ChannelIndependent,
    RNNForecaster,
    forecast_loss,
    prediction_interval,
)
from rnnlab.forecasting.normalization import InstanceNorm
from rnnlab.forecasting.predict import forecast, load_run
from rnnlab.forecasting.run_files import META_FILE, SCALER_FILE
from rnnlab.forecasting.segment_model import SegmentForecaster
from rnnlab.forecasting.settings import ForecastingData
from rnnlab.forecasting.task import ForecastingTask, WindowBatches

__all__ = [
    "META_FILE",
    "SCALER_FILE",
    "BacktestResult",
    "ChannelIndependent",
    "ForecastingData",
    "ForecastingTask",
    "InstanceNorm",
    "LinearForecaster",
    "NaiveForecaster",
    "RNNForecaster",
    "SeasonalNaiveForecaster",
    "SegmentForecaster",
    "WindowBatches",
    "backtest",
    "coverage",
    "forecast",
    "forecast_loss",
    "forecast_metrics",
    "load_run",
    "mae",
    "mase",
    "mse",
    "prediction_interval",
    "seasonal_naive_scale",
    "seasonal_period",
    "smape",
]
