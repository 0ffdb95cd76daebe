"""Rolling-origin backtest of any forecaster over the test (or validation) part.

The forecast origin moves through the part ``stride`` rows at a time; at each origin ``t``
the forecaster sees rows ``[t - L, t)`` (history, which may reach into the part before)
and forecasts rows ``[t, t + H)``. The model is fixed: it is not refitted as the origin
moves (fit it on the training part first). With ``stride=1`` this is the evaluation of the
long-horizon literature, over every test window (without the ``drop_last`` of some of that
code's test loaders, which skips the last incomplete batch).

A forecaster is any callable ``f(inputs (B, L, C_in), future_covariates (B, H, C_f))``
returning the mean ``(B, H, C_out)``, or a pair ``(mean, variance)`` for a probabilistic
forecaster, in which case the central interval at ``level`` is scored by its coverage::

    result = backtest(LinearForecaster(96, 96).fit(data.train), data)
    result.metrics["mse"], result.metrics["mae_original"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from rnnlab.data.series import ForecastData
from rnnlab.data.series.split import Part
from rnnlab.forecasting.baselines import seasonal_period
from rnnlab.forecasting.metrics import forecast_metrics

ForecastOutput = Tensor | tuple[Tensor, Tensor]
Forecaster = Callable[[Tensor, Tensor], ForecastOutput]


@dataclass
class BacktestResult:
    """Forecasts and scores of one backtest.

    Attributes:
        predictions: ``(N, H, C_out)`` forecasts in scaled units.
        targets: ``(N, H, C_out)`` truths in scaled units.
        variances: ``(N, H, C_out)`` forecast variances (scaled units), or ``None``.
        origins: ``(N,)`` series row of each origin (the first forecast row).
        timestamps: the timestamps of the origins.
        metrics: see :func:`rnnlab.forecasting.metrics.forecast_metrics`.
        per_step: ``mse`` and ``mae`` (scaled) per horizon step, each ``(H,)``.
    """

    predictions: np.ndarray
    targets: np.ndarray
    variances: np.ndarray | None
    origins: np.ndarray
    timestamps: pd.DatetimeIndex
    metrics: dict[str, float]
    per_step: dict[str, np.ndarray]


def backtest(
    forecaster: Forecaster,
    data: ForecastData,
    part: Part = "test",
    stride: int = 1,
    batch_size: int = 512,
    level: float = 0.9,
    period: int | None = None,
    device: torch.device | str | None = None,
) -> BacktestResult:
    """Run ``forecaster`` from every ``stride``-th origin of ``part`` and score it.

    Args:
        forecaster: see the module docstring; an ``nn.Module`` is put in eval mode for the
            run (and its mode restored after).
        data: the prepared series (:func:`rnnlab.data.series.prepare_forecast_data`).
        part: ``"test"`` or ``"valid"`` (or ``"train"``, for in-sample scores).
        stride: origins taken every ``stride`` windows of the part.
        batch_size: windows per forecaster call.
        level: central coverage level of the intervals of a probabilistic forecaster.
        period: MASE season; from the series frequency when ``None``.
        device: where to run the forecaster; inputs stay on the CPU when ``None``.

    Returns:
        The :class:`BacktestResult`.
    """
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    windows = data.part(part)
    x_all, y_all, f_all = windows.tensors()  # (N, L, C_in), (N, H, C_out), (N, H, C_f)
    chosen = torch.arange(0, x_all.shape[0], stride)
    means: list[Tensor] = []
    variances: list[Tensor] = []
    was_training = forecaster.training if isinstance(forecaster, nn.Module) else None
    if isinstance(forecaster, nn.Module):
        forecaster.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(chosen), batch_size):
                rows = chosen[start : start + batch_size]
                x, f = x_all[rows], f_all[rows]
                if device is not None:
                    x, f = x.to(device), f.to(device)
                output = forecaster(x, f)
                mean, variance = output if isinstance(output, tuple) else (output, None)
                expected = (len(rows), *y_all.shape[1:])
                if tuple(mean.shape) != expected:
                    raise ValueError(
                        f"the forecaster returned shape {tuple(mean.shape)}, expected {expected} "
                        f"(B, horizon, output channels)"
                    )
                means.append(mean.detach().cpu().double())
                if variance is not None:
                    variances.append(variance.detach().cpu().double())
    finally:
        if isinstance(forecaster, nn.Module) and was_training is not None:
            forecaster.train(was_training)
    pred = torch.cat(means).numpy()  # (N, H, C)
    truth = y_all[chosen].double().numpy()  # (N, H, C)
    var = torch.cat(variances).numpy() if variances else None
    lower = upper = None
    if var is not None:
        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        spread = z * np.sqrt(np.clip(var, 0.0, None))
        lower, upper = pred - spread, pred + spread
    season = seasonal_period(data.series.freq) if period is None else period
    metrics = forecast_metrics(
        pred,
        truth,
        scaler=data.scaler,
        target_names=data.target_names,
        insample=data.train_targets(),
        period=season,
        lower=lower,
        upper=upper,
    )
    origins = windows.origins[chosen.numpy()]
    return BacktestResult(
        predictions=pred,
        targets=truth,
        variances=var,
        origins=origins,
        timestamps=data.series.timestamps[origins],
        metrics=metrics,
        per_step={
            "mse": np.mean((pred - truth) ** 2, axis=(0, 2)),
            "mae": np.mean(np.abs(pred - truth), axis=(0, 2)),
        },
    )
