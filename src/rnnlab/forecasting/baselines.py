"""Baseline forecasters: naive, seasonal naive, and a closed-form (D)Linear model.

Every forecaster here is a callable ``f(inputs, future_covariates=None)`` on a batch of
windows: ``inputs (B, L, C_in)`` whose first ``output_size`` channels are the targets (the
column order of :func:`rnnlab.data.series.prepare_forecast_data`), returning
``(B, H, C_out)``. They are ``torch.nn.Module`` s so they move with ``.to(device)`` and save
with ``state_dict()``; the backtest runs them exactly as it runs a trained RNN.

- :class:`NaiveForecaster`: ``y_hat[t + h] = y[t]`` (the last value, for every step).
- :class:`SeasonalNaiveForecaster`: ``y_hat[t + h] = y[t + h - m * ceil(h / m)]``, the value
  one season (period ``m``) back, for ``h = 1 .. H``.
- :class:`LinearForecaster`: each target channel's next ``H`` values as one linear map of
  that channel's last ``L`` values, fitted by least squares on the training windows.
  With ``decomposition=True`` (DLinear, Zeng et al. 2023) the window is split into a trend
  (moving average of ``kernel_size`` with the ends padded by repeating the first and last
  values) and a remainder ``x - trend``, each with its own linear map:
  ``y_hat = W_r (x - trend) + W_t trend + b``. Fitted in closed form without a penalty
  (``ridge=0``) the two maps together can express exactly the linear maps of ``x``, so the
  decomposition changes the forecasts only through the ridge penalty, which it applies to
  ``W_r`` and ``W_t`` separately (the bias is not penalized).
  ``individual=False`` (DLinear's default): one map shared by every channel, fitted on the
  windows of all channels together; ``individual=True``: one map per channel. Either way the
  model is channel-independent: a channel's forecast reads only its own history.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
from pandas.tseries.frequencies import to_offset
from torch import Tensor, nn

from rnnlab.data.series import SeriesError, WindowDataset


def _step_nanos(offset: pd.DateOffset) -> int | None:
    """The fixed length of a step in nanoseconds: ticks (hours, minutes...) and days (pandas
    3's ``Day`` is calendar-aware, no longer a ``Tick``, so it is measured by its ``n``)."""
    if isinstance(offset, pd.offsets.Tick):
        return int(offset.nanos)
    if isinstance(offset, pd.offsets.Day):
        return int(offset.n) * _DAY
    return None


_DAY = 86_400 * 10**9


def seasonal_period(freq: str | None) -> int:
    """A natural season length for a pandas frequency alias.

    Sub-daily steps that divide a day: one day (``"h"`` -> 24, ``"30min"`` -> 48,
    ``"15min"`` -> 96); daily -> 7; weekly (``"W"``, ``"7D"``) -> 52; monthly -> 12;
    quarterly -> 4; anything else (or ``None``) -> 1.

    Example:
        >>> seasonal_period("h"), seasonal_period("15min"), seasonal_period("MS")
        (24, 96, 12)
        >>> seasonal_period("7D"), seasonal_period("D")
        (52, 7)
    """
    if freq is None:
        return 1
    try:
        offset = to_offset(freq)
    except ValueError:
        return 1
    nanos = _step_nanos(offset)
    if nanos is not None and nanos > 0:
        if nanos < _DAY and _DAY % nanos == 0:
            return _DAY // nanos
        if nanos == _DAY:
            return 7
        if nanos == 7 * _DAY:
            return 52
        return 1
    code = freq.upper().split("-")[0]
    if code in ("D", "B"):
        return 7
    if code.startswith("W"):
        return 52
    if code in ("M", "MS", "ME", "BM", "BMS"):
        return 12
    if code in ("Q", "QS", "QE", "BQ", "BQS"):
        return 4
    return 1


def is_sub_yearly(freq: str | None) -> bool:
    """Whether ``freq`` steps by less than a year (so a season of 1 is suspicious).

    Example:
        >>> is_sub_yearly("2D"), is_sub_yearly("YS"), is_sub_yearly(None)
        (True, False, False)
    """
    if freq is None:
        return False
    try:
        offset = to_offset(freq)
    except ValueError:
        return False
    nanos = _step_nanos(offset)
    if nanos is not None:
        return 0 < nanos < 365 * _DAY
    code = freq.upper().split("-")[0].lstrip("0123456789")
    return not code.startswith(("Y", "A", "BY", "BA"))


def _targets(inputs: Tensor, output_size: int | None, name: str) -> Tensor:
    if inputs.dim() != 3:
        raise ValueError(f"{name}: inputs must be (B, L, C_in), got shape {tuple(inputs.shape)}")
    size = inputs.shape[-1] if output_size is None else output_size
    if size > inputs.shape[-1]:
        raise ValueError(
            f"{name}: output_size={size} exceeds the {inputs.shape[-1]} input channels"
        )
    return inputs[..., :size]  # (B, L, C_out)


class NaiveForecaster(nn.Module):
    """Repeat the last observed value over the horizon.

    Args:
        horizon: steps to forecast ``H``.
        output_size: the number of target channels (the first channels of ``inputs``);
            all channels when ``None``.
    """

    def __init__(self, horizon: int, output_size: int | None = None) -> None:
        super().__init__()
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.horizon = horizon
        self.output_size = output_size

    def forward(self, inputs: Tensor, future_covariates: Tensor | None = None) -> Tensor:
        y = _targets(inputs, self.output_size, "NaiveForecaster")  # (B, L, C)
        return y[:, -1:, :].expand(-1, self.horizon, -1).clone()  # (B, H, C)


class SeasonalNaiveForecaster(nn.Module):
    """Repeat the last observed season: ``y_hat[t + h] = y[t + h - m * ceil(h / m)]``.

    Args:
        horizon: steps to forecast ``H``.
        period: the season length ``m`` (see :func:`seasonal_period`); the input window
            must hold at least ``m`` steps.
        output_size: as in :class:`NaiveForecaster`.
    """

    def __init__(self, horizon: int, period: int, output_size: int | None = None) -> None:
        super().__init__()
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        self.horizon = horizon
        self.period = period
        self.output_size = output_size

    def forward(self, inputs: Tensor, future_covariates: Tensor | None = None) -> Tensor:
        y = _targets(inputs, self.output_size, "SeasonalNaiveForecaster")  # (B, L, C)
        length = y.shape[1]
        if length < self.period:
            raise ValueError(
                f"SeasonalNaiveForecaster: input_length={length} is shorter than "
                f"period={self.period}"
            )
        steps = torch.arange(self.horizon, device=y.device)  # h - 1 for h = 1..H
        index = length - self.period + steps % self.period  # (H,)
        return y[:, index, :]  # (B, H, C)


def moving_average_matrix(length: int, kernel_size: int) -> Tensor:
    """``A`` with ``trend = A @ x``: a centred moving average, ends padded by repetition.

    Row ``t`` averages ``x[clip(t + k, 0, L - 1)]`` for ``k`` in ``[-p, p]``,
    ``p = (kernel_size - 1) / 2`` (DLinear's ``series_decomp``).
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size}")
    half = (kernel_size - 1) // 2
    matrix = torch.zeros(length, length, dtype=torch.float64)
    for t in range(length):
        for k in range(-half, half + 1):
            matrix[t, min(max(t + k, 0), length - 1)] += 1.0 / kernel_size
    return matrix


class LinearForecaster(nn.Module):
    """Per-channel linear map from the last ``L`` values to the next ``H``, fitted in closed form.

    Args:
        input_length: ``L``.
        horizon: ``H``.
        output_size: number of target channels (the first channels of ``inputs``); all
            channels when ``None``. Fixed by :meth:`fit` when ``None``.
        decomposition: DLinear's trend/remainder split (see the module docstring).
        kernel_size: moving-average length of the trend (odd; DLinear uses 25).
        individual: one map per channel instead of one shared map.
        ridge: penalty ``lambda`` on the weights, relative to the number of samples ``n``:
            the fit solves ``(X^T X + lambda n D) W = X^T Y``, ``D`` the identity without the
            bias entry. ``0`` gives ordinary least squares (minimum-norm when singular).

    Example:
        >>> model = LinearForecaster(96, 24).fit(train_windows)  # doctest: +SKIP
        >>> model(inputs).shape  # doctest: +SKIP
        torch.Size([32, 24, 7])
    """

    weight: Tensor
    bias: Tensor
    features: Tensor

    def __init__(
        self,
        input_length: int,
        horizon: int,
        output_size: int | None = None,
        decomposition: bool = True,
        kernel_size: int = 25,
        individual: bool = False,
        ridge: float = 0.0,
    ) -> None:
        super().__init__()
        if input_length < 1 or horizon < 1:
            raise ValueError(
                f"input_length and horizon must be >= 1, got {input_length} and {horizon}"
            )
        if ridge < 0 or not math.isfinite(ridge):
            raise ValueError(f"ridge must be a finite number >= 0, got {ridge}")
        self.input_length = input_length
        self.horizon = horizon
        self.output_size = output_size
        self.decomposition = decomposition
        self.individual = individual
        self.ridge = ridge
        eye = torch.eye(input_length, dtype=torch.float64)
        if decomposition:
            trend = moving_average_matrix(input_length, kernel_size)
            features = torch.cat([eye - trend, trend], dim=0)  # (2L, L): [remainder; trend]
        else:
            features = eye  # (L, L)
        self.register_buffer("features", features)
        self.register_buffer("weight", torch.zeros(0))  # (F, H) or (C, F, H) after fit
        self.register_buffer("bias", torch.zeros(0))  # (H,) or (C, H)

    @property
    def fitted(self) -> bool:
        return self.weight.numel() > 0

    def _design(self, series: Tensor) -> Tensor:
        """``(..., L)`` windows -> ``(..., F)`` features in float64."""
        return series.double() @ self.features.T  # (..., F)

    @torch.no_grad()
    def fit(self, windows: WindowDataset, chunk: int = 4096) -> LinearForecaster:
        """Least squares on every window of ``windows`` (the training part); returns ``self``."""
        x_all, y_all, _ = windows.tensors()  # (N, L, C_in), (N, H, C_out)
        if x_all.shape[1] != self.input_length or y_all.shape[1] != self.horizon:
            raise SeriesError(
                f"LinearForecaster(input_length={self.input_length}, horizon={self.horizon}) "
                f"cannot fit windows of input_length={x_all.shape[1]}, horizon={y_all.shape[1]}"
            )
        channels = y_all.shape[-1] if self.output_size is None else self.output_size
        if channels > y_all.shape[-1]:
            raise SeriesError(
                f"output_size={channels} exceeds the {y_all.shape[-1]} target channels"
            )
        self.output_size = channels
        size = self.features.shape[0] + 1  # features + bias
        groups = channels if self.individual else 1
        gram = torch.zeros(groups, size, size, dtype=torch.float64)
        cross = torch.zeros(groups, size, self.horizon, dtype=torch.float64)
        for start in range(0, x_all.shape[0], chunk):
            x = x_all[start : start + chunk, :, :channels].transpose(1, 2)  # (n, C, L)
            y = y_all[start : start + chunk, :, :channels].transpose(1, 2).double()  # (n, C, H)
            design = self._design(x)  # (n, C, F)
            design = torch.cat([design, torch.ones_like(design[..., :1])], dim=-1)  # (n, C, F+1)
            if self.individual:
                gram += torch.einsum("ncf,ncg->cfg", design, design)
                cross += torch.einsum("ncf,nch->cfh", design, y)
            else:
                gram[0] += torch.einsum("ncf,ncg->fg", design, design)
                cross[0] += torch.einsum("ncf,nch->fh", design, y)
        samples = x_all.shape[0] * (1 if self.individual else channels)
        penalty = torch.ones(size, dtype=torch.float64)
        penalty[-1] = 0.0  # no penalty on the bias
        system = gram + self.ridge * samples * torch.diag(penalty)  # (G, F+1, F+1)
        solution = torch.linalg.lstsq(system, cross, driver="gelsd").solution  # (G, F+1, H)
        if self.individual:
            self.weight, self.bias = solution[:, :-1, :], solution[:, -1, :]
        else:
            self.weight, self.bias = solution[0, :-1, :], solution[0, -1, :]
        return self

    def forward(self, inputs: Tensor, future_covariates: Tensor | None = None) -> Tensor:
        if not self.fitted:
            raise RuntimeError("LinearForecaster is not fitted: call fit(train_windows) first")
        y = _targets(inputs, self.output_size, "LinearForecaster")  # (B, L, C)
        if y.shape[1] != self.input_length:
            raise ValueError(
                f"LinearForecaster: expected input_length={self.input_length}, got {y.shape[1]}"
            )
        design = self._design(y.transpose(1, 2))  # (B, C, F)
        if self.individual:
            out = torch.einsum("bcf,cfh->bch", design, self.weight) + self.bias  # (B, C, H)
        else:
            out = design @ self.weight + self.bias  # (B, C, H)
        return out.transpose(1, 2).to(inputs.dtype)  # (B, H, C)
