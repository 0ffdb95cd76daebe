"""Seasonal differencing around any forecaster: learn the change from one season to the next.

With season ``P`` (``data.period``) and a window ``x_1..x_L`` (``L > P``), the wrapped model
reads the season-on-season differences and forecasts theirs; the forecast is integrated back
onto the last season, as SARIMA's seasonal difference (``D = 1``) does::

    d_t = x_t - x_{t-P}                            t = P+1..L      (L - P rows in)
    d_hat_{L+1..L+H} = model(d)
    y_{L+h} = d_hat_{L+h} + x_{L+h-P}              h <= P
    y_{L+h} = d_hat_{L+h} + y_{L+h-P}              h >  P

So a model that forecasts no change is the seasonal-naive forecast, and what it learns is a
correction to it: on short, strongly seasonal series (a few dozen training windows) that
is the baseline the network starts from, instead of having to learn the season itself.
Targets are the first ``C_out`` input channels (the forecasting data's layout); the other
input channels (past covariates) are differenced too. Teacher-forcing targets are
differenced the same way.

Example:
    >>> from rnnlab.forecasting.model import RNNForecaster
    >>> inner = RNNForecaster(1, 1, horizon=6, hidden_size=8)
    >>> model = SeasonalDifference(inner, period=4, horizon=6, output_size=1)
    >>> model(torch.randn(2, 12, 1)).shape
    torch.Size([2, 6, 1])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class SeasonalDifference(nn.Module):
    """Run ``forecaster`` on seasonal differences and integrate its forecast (see module doc).

    Args:
        forecaster: a point forecaster ``(B, L - P, C_in) -> (B, H, C_out)``.
        period: the season ``P``.
        horizon: ``H``, the steps ``forecaster`` gives.
        output_size: ``C_out``, the target channels (the first ``C_out`` of the input).
    """

    def __init__(self, forecaster: nn.Module, period: int, horizon: int, output_size: int) -> None:
        super().__init__()
        for name, value in (("period", period), ("horizon", horizon), ("output_size", output_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.forecaster = forecaster
        self.period = period
        self.horizon = horizon
        self.output_size = output_size

    def forward(
        self, inputs: Tensor, future_covariates: Tensor | None = None, targets: Tensor | None = None
    ) -> Tensor:
        """``(B, L, C_in) -> (B, H, C_out)``; ``L`` must exceed the period."""
        p, h, c = self.period, self.horizon, self.output_size
        if inputs.dim() != 3 or inputs.shape[1] <= p:
            raise ValueError(
                f"SeasonalDifference: inputs must be (B, L, C) with L > period {p}, "
                f"got {tuple(inputs.shape)}"
            )
        length = inputs.shape[1]
        diffs = inputs[:, p:] - inputs[:, :-p]  # (B, L-P, C_in)
        target_diffs = None
        if targets is not None:
            history = torch.cat([inputs[..., :c], targets], dim=1)  # (B, L+H, C_out)
            target_diffs = history[:, length:] - history[:, length - p : length - p + h]
        out = self.forecaster(diffs, future_covariates, target_diffs)
        if isinstance(out, tuple):
            raise ValueError("SeasonalDifference wraps point forecasters, not a Gaussian head")
        seasons = math.ceil(h / p)
        padded = torch.cat([out, out.new_zeros(out.shape[0], seasons * p - h, c)], dim=1)
        # y at phase j of season k = last season's x at phase j + the forecast changes of
        # seasons 1..k at phase j: a cumulative sum over the seasons.
        changes = padded.view(out.shape[0], seasons, p, c).cumsum(dim=1)
        last_season = inputs[:, length - p :, :c].unsqueeze(1)  # (B, 1, P, C_out)
        return (changes + last_season).reshape(out.shape[0], seasons * p, c)[:, :h]
