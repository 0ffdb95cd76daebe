"""Forecast accuracy: MSE, MAE, sMAPE, MASE and prediction-interval coverage.

All functions take NumPy arrays or torch tensors of the same shape ``(..., C)`` (channels
last) and return a Python float averaged over every element. With ``y`` the truth and
``y_hat`` the forecast:

- ``mse = mean((y_hat - y)^2)``, ``mae = mean(|y_hat - y|)``. The long-horizon literature
  (Informer, Autoformer, DLinear) reports both on z-scored data (scaler fitted on the
  training part); :func:`forecast_metrics` also gives them in original units.
- ``smape = mean(200 |y_hat - y| / (|y| + |y_hat|))`` in percent, in ``[0, 200]``; a term
  with ``y = y_hat = 0`` counts 0.
- ``mase = mean(|y_hat - y| / s_c)`` with ``s_c`` the in-sample MAE of the seasonal-naive
  forecast on channel ``c`` of the training part: ``s_c = mean_t |y[t] - y[t - m]|``
  (Hyndman and Koehler 2006). Below 1: better than seasonal naive was in sample.
- ``coverage = mean(lower <= y <= upper)``: the share of truths inside their interval.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
from torch import Tensor

from rnnlab.data.series import Scaler

ArrayLike = np.ndarray | Tensor


def _array(value: ArrayLike, name: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().double().numpy()
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        raise ValueError(f"{name} must be an array of forecasts, got a scalar")
    return array


def _pair(pred: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, t = _array(pred, "pred"), _array(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {p.shape} and {t.shape}")
    if p.size == 0:
        raise ValueError("pred and target are empty")
    return p, t


def mse(pred: ArrayLike, target: ArrayLike) -> float:
    """Mean squared error.

    Example:
        >>> mse(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
        2.5
    """
    p, t = _pair(pred, target)
    return float(np.mean((p - t) ** 2))


def mae(pred: ArrayLike, target: ArrayLike) -> float:
    """Mean absolute error.

    Example:
        >>> mae(np.array([1.0, -2.0]), np.array([0.0, 0.0]))
        1.5
    """
    p, t = _pair(pred, target)
    return float(np.mean(np.abs(p - t)))


def smape(pred: ArrayLike, target: ArrayLike) -> float:
    """Symmetric mean absolute percentage error, in percent (``[0, 200]``).

    Example:
        >>> smape(np.array([110.0, 0.0]), np.array([90.0, 0.0]))
        10.0
    """
    p, t = _pair(pred, target)
    denominator = np.abs(p) + np.abs(t)
    terms = np.divide(
        200.0 * np.abs(p - t), denominator, out=np.zeros_like(p), where=denominator > 0
    )
    return float(np.mean(terms))


class UndefinedMetricError(ValueError):
    """A metric has no value for these data (MASE on a series that repeats exactly)."""


def seasonal_naive_scale(insample: ArrayLike, period: int = 1) -> np.ndarray:
    """Per-channel in-sample MAE of the seasonal-naive forecast, ``(C,)``.

    Args:
        insample: ``(T, C)`` (or ``(T,)``) training values in the units of the forecasts.
        period: the season ``m``; 1 gives the naive (random walk) scale.
    """
    values = _array(insample, "insample")
    if values.ndim == 1:
        values = values[:, None]
    if period < 1 or values.shape[0] <= period:
        raise ValueError(
            f"MASE needs period >= 1 and more than period={period} in-sample rows, "
            f"got {values.shape[0]}"
        )
    scale: np.ndarray = np.mean(np.abs(values[period:] - values[:-period]), axis=0)  # (C,)
    if np.any(scale == 0):
        bad = int(np.flatnonzero(scale == 0)[0])
        raise UndefinedMetricError(
            f"MASE is undefined: channel {bad} repeats exactly every {period} steps in sample"
        )
    return scale


def mase(pred: ArrayLike, target: ArrayLike, insample: ArrayLike, period: int = 1) -> float:
    """Mean absolute scaled error (see the module docstring).

    Example:
        >>> train = np.array([[0.0], [1.0], [0.0], [1.0]])  # naive in-sample MAE = 1
        >>> mase(np.array([[2.0]]), np.array([[0.0]]), train)
        2.0
    """
    p, t = _pair(pred, target)
    scale = seasonal_naive_scale(insample, period)
    if scale.shape[0] != p.shape[-1]:
        raise ValueError(
            f"insample has {scale.shape[0]} channels but the forecasts have {p.shape[-1]}"
        )
    return float(np.mean(np.abs(p - t) / scale))


def coverage(lower: ArrayLike, upper: ArrayLike, target: ArrayLike) -> float:
    """Share of ``target`` values inside ``[lower, upper]``.

    Example:
        >>> coverage(np.zeros(4), np.ones(4), np.array([0.5, 1.0, 1.5, -0.1]))
        0.5
    """
    low, t = _pair(lower, target)
    high, _ = _pair(upper, target)
    return float(np.mean((low <= t) & (t <= high)))


def forecast_metrics(
    pred: ArrayLike,
    target: ArrayLike,
    *,
    scaler: Scaler | None = None,
    target_names: Sequence[str] | None = None,
    insample: ArrayLike | None = None,
    period: int = 1,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
) -> dict[str, float]:
    """Every metric at once, on scaled data and in original units.

    Args:
        pred: ``(..., C)`` forecasts in scaled units (what the model sees).
        target: the truth, same shape and units.
        scaler: the fitted scaler, to report ``*_original`` metrics; without it the
            original units are taken to be the given ones.
        target_names: the scaler columns of the ``C`` channels (all when ``None``).
        insample: ``(T, C)`` training targets in **original** units, for MASE.
        period: MASE season.
        lower: interval lower bounds (scaled units) for coverage.
        upper: interval upper bounds (scaled units).

    Returns:
        ``mse``, ``mae`` (scaled), ``mse_original``, ``mae_original``, ``smape`` (original
        units), and ``mase`` when ``insample`` is given and MASE is defined for it (not for a
        series that repeats exactly in sample), ``coverage`` when the bounds are.
    """
    p, t = _pair(pred, target)
    if scaler is None:
        p_orig, t_orig = p, t
    else:
        p_orig = scaler.inverse_transform(p, target_names)
        t_orig = scaler.inverse_transform(t, target_names)
    result = {
        "mse": mse(p, t),
        "mae": mae(p, t),
        "mse_original": mse(p_orig, t_orig),
        "mae_original": mae(p_orig, t_orig),
        "smape": smape(p_orig, t_orig),
    }
    if insample is not None:
        # a constant (or exactly periodic) training series gives MASE no scale: left out
        with contextlib.suppress(UndefinedMetricError):
            result["mase"] = mase(p_orig, t_orig, insample, period)
    if (lower is None) != (upper is None):
        raise ValueError("pass both lower and upper for coverage, or neither")
    if lower is not None and upper is not None:
        result["coverage"] = coverage(lower, upper, t)
    return result


# What a console line shows of a forecasting evaluation; metrics.jsonl keeps every key.
COMPACT_KEYS = (
    "mse",
    "mae",
    "mase",
    "coverage",
    "baseline_linear_mse",
    "baseline_seasonal_naive_mse",
)
_SHORT = {"baseline_linear_mse": "linear_mse", "baseline_seasonal_naive_mse": "snaive_mse"}


def compact_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The few metrics worth a console line: the model's MSE / MAE / MASE (and coverage),
    and the MSE of the linear and seasonal-naive baselines for comparison, under short names.

    Example::

        >>> compact_metrics({"mse": 0.4, "mae": 0.5, "smape": 9.0, "baseline_linear_mse": 0.38})
        {'mse': 0.4, 'mae': 0.5, 'linear_mse': 0.38}
    """
    return {_SHORT.get(key, key): metrics[key] for key in COMPACT_KEYS if key in metrics}
