"""``[data]`` of the forecasting task: where the series comes from, how it is split, scaled
and windowed, and the forecasting head (which ``[model]``, shared by every task, leaves out).

Validated by pydantic when the config loads, so a bad value is a one-line
:class:`~rnnlab.errors.ConfigError` naming the key.

Example:
    >>> ForecastingData(path="my.csv", horizon=12).input_length
    96
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from rnnlab.config import DataConfig

#: Named series and the data set each comes from (``rnnlab.data.datasets``).
NAMED_SERIES = ("etth1", "etth2", "ettm1", "ettm2", "airline", "sunspots")


class ForecastingData(DataConfig):
    """``[data]`` of the forecasting task.

    Attributes:
        dataset: a named series (``etth1``, ``etth2``, ``ettm1``, ``ettm2``, ``airline``,
            ``sunspots``); exactly one of ``dataset`` and ``path``.
        path: a CSV (``.csv``, ``.tsv``, ``.txt``) or Parquet file.
        root: data root for named series (default ``$RNNLAB_DATA``, then the cache).
        time_column: the timestamp column (default: the first column).
        targets: the columns to forecast (default: every other non-covariate column).
        past_covariates: columns observed up to the forecast origin (inputs only).
        future_covariates: columns known over the horizon (fed to the head).
        calendar: calendar features derived from the timestamps (``hour``,
            ``dayofweek``, ``month``...), known-future covariates.
        calendar_encoding: ``sincos`` or ``scaled``.
        fill: missing values: ``None`` (an error), ``ffill`` or ``interpolate``.
        sort: sort unsorted timestamps instead of failing.
        split: ``ett`` (12/4/4 months, ETT series), ``fraction`` or ``dates``.
        train_fraction, valid_fraction, test_fraction: for ``split = "fraction"``.
        valid_start, test_start, end: for ``split = "dates"``.
        scaling: ``zscore``, ``minmax`` or ``none``; fitted on the training rows.
        input_length: ``L``, rows of history per window.
        horizon: ``H``, rows to forecast.
        stride: rows between training windows.
        eval_stride: rows between validation/test origins (1: every origin).
        period: the season of the seasonal-naive baseline and of MASE (default: from the
            frequency, e.g. 24 for hourly, 12 for monthly data).
        decoder: ``direct`` (one linear map from the final state to all ``H`` steps),
            ``seq2seq`` (an autoregressive decoder) or ``segments`` (segment-wise recurrence
            with parallel decoding, SegRNN's idea:
            :class:`~rnnlab.forecasting.segment_model.SegmentForecaster`; always channel
            independent, so targets only).
        segment_length: ``segments`` only: ``w``, rows per input and output segment.
        channel_embedding: ``segments`` only: a learned per-channel embedding in the
            decoder's queries (beside the position embedding).
        head_dropout: ``segments`` only: dropout on the decoded states before the output map.
        instance_norm: ``off``, ``last``, ``mean``, ``meanstd`` or ``revin`` (per-window
            normalization, undone at the output; ``revin`` adds a learned per-channel
            affine map). ``off`` is a word, not ``None``, so that a
            run's saved ``config.toml`` (TOML has no null) reloads as it was trained.
        loss: the training loss of a point forecast: ``mse``, ``mae`` or ``huber`` (delta
            1 on the scaled data); the reported metrics are MSE and MAE whatever it is. The
            Gaussian head always trains by its NLL (``mse`` only).
        gaussian: predict a variance too, train by Gaussian NLL, report coverage.
        interval_level: central level of the prediction intervals.
        teacher_forcing: seq2seq only, the probability of feeding the true previous value.
        linear_ridge: ridge penalty of the linear baseline (0: least squares).
        channel_independent: forecast each target channel on its own with one shared
            model (PatchTST, SegRNN): a window of ``C`` channels becomes ``C`` univariate
            windows; needs targets only (no covariates or calendar features).
        seasonal_difference: the model reads the season-on-season changes ``x_t -
            x_{t-P}`` (``P`` = the period) and forecasts theirs, added back onto the last
            season (:class:`~rnnlab.forecasting.seasonal.SeasonalDifference`): the network
            learns a correction to the seasonal-naive forecast. Needs ``input_length``
            above the period and a point forecast (no Gaussian head).
    """

    dataset: str | None = None
    path: str | None = None
    root: str | None = None
    time_column: str | None = None
    targets: list[str] | None = None
    past_covariates: list[str] = Field(default_factory=list)
    future_covariates: list[str] = Field(default_factory=list)
    calendar: list[str] = Field(default_factory=list)
    calendar_encoding: Literal["sincos", "scaled"] = "sincos"
    fill: Literal["ffill", "interpolate"] | None = None
    sort: bool = False
    split: Literal["ett", "fraction", "dates"] = "fraction"
    train_fraction: float = Field(default=0.7, gt=0.0, le=1.0)
    valid_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    test_fraction: float = Field(default=0.2, ge=0.0, le=1.0)
    valid_start: str | None = None
    test_start: str | None = None
    end: str | None = None
    scaling: Literal["zscore", "minmax", "none"] = "zscore"
    input_length: int = Field(default=96, ge=1)
    horizon: int = Field(default=24, ge=1)
    stride: int = Field(default=1, ge=1)
    eval_stride: int = Field(default=1, ge=1)
    period: int | None = Field(default=None, ge=1)
    decoder: Literal["direct", "seq2seq", "segments"] = "direct"
    segment_length: int = Field(default=48, ge=1)
    channel_embedding: bool = True
    head_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    instance_norm: Literal["off", "last", "mean", "meanstd", "revin"] = "last"
    loss: Literal["mse", "mae", "huber"] = "mse"
    gaussian: bool = False
    interval_level: float = Field(default=0.9, gt=0.0, lt=1.0)
    teacher_forcing: float = Field(default=0.0, ge=0.0, le=1.0)
    linear_ridge: float = Field(default=0.0, ge=0.0)
    channel_independent: bool = False
    seasonal_difference: bool = False

    @field_validator("dataset")
    @classmethod
    def _named(cls, name: str | None) -> str | None:
        if name is not None and name not in NAMED_SERIES:
            raise ValueError(f"unknown series (named series: {', '.join(NAMED_SERIES)})")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> ForecastingData:
        if (self.dataset is None) == (self.path is None):
            raise ValueError(
                f"set exactly one of data.dataset and data.path, got dataset={self.dataset!r} "
                f"and path={self.path!r}"
            )
        if self.split == "dates" and (self.valid_start is None or self.test_start is None):
            raise ValueError("data.split='dates' needs data.valid_start and data.test_start")
        if self.teacher_forcing > 0 and self.decoder != "seq2seq":
            raise ValueError(
                f"data.teacher_forcing={self.teacher_forcing} needs data.decoder='seq2seq'"
            )
        if self.seasonal_difference and self.gaussian:
            raise ValueError(
                "data.seasonal_difference = true forecasts a point, not a Gaussian: "
                "set data.gaussian = false"
            )
        if self.gaussian and self.loss != "mse":
            raise ValueError(
                f"data.loss={self.loss!r}: the Gaussian head trains by its NLL; "
                "set data.gaussian = false or leave data.loss = 'mse'"
            )
        if (self.channel_independent or self.decoder == "segments") and (
            self.past_covariates or self.future_covariates or self.calendar
        ):
            which = (
                "data.decoder = 'segments'"
                if self.decoder == "segments"
                else "data.channel_independent = true"
            )
            raise ValueError(
                f"{which} forecasts each target from its own past "
                "only: remove data.past_covariates, data.future_covariates and data.calendar"
            )
        return self
