"""Time series forecasting as a task: a CSV or named series -> multi-step forecasts.

The series (a named data set or a CSV/Parquet file) is loaded and checked by
:mod:`rnnlab.data.series`, split in time (the ETT protocol, fractions or dates), scaled with
statistics of the training rows only, and cut into windows of ``input_length`` rows of
history and ``horizon`` rows to forecast::

    rows:   s ............ s+L ............ s+L+H
            [ inputs (L)   )[ targets (H)   )          one window, origin s+L

The model is :class:`~rnnlab.models.forecaster.RNNForecaster` over the cell of ``[model]``
(any registered cell and its extras), with a direct multi-horizon head (default) or a
sequence-to-sequence decoder, optional instance normalization and an optional Gaussian
head. Because ``[model]`` describes the recurrent stack shared by every task, the
forecasting head is set in ``[data]`` (``decoder``, ``instance_norm``, ``gaussian``, ...).

Config::

    [task]
    name = "forecasting"

    [data]
    dataset = "etth1"          # or path = "my.csv" (a named set: etth1, etth2, ettm1,
                               # ettm2, airline, sunspots)
    targets = ["OT"]           # default: every column but the time column and covariates
    split = "ett"              # "ett" | "fraction" | "dates"
    input_length = 96
    horizon = 96
    instance_norm = "last"

Evaluation is the rolling-origin backtest of :func:`rnnlab.forecasting.backtest` over every
``eval_stride``-th window of the part (stride 1: every origin, as in the literature), and it
always scores three baselines on the same windows, fitted in the same run:

- ``naive``: the last observed value;
- ``seasonal_naive``: the value one season back (``period``, from the frequency by default);
- ``linear``: a DLinear-style linear map of each channel's window fitted by least squares on
  the training windows (:class:`~rnnlab.forecasting.LinearForecaster`).

Metrics of :meth:`ForecastingTask.evaluate`: ``loss`` (MSE, or the Gaussian NLL with
``gaussian = true``), ``mse`` and ``mae`` on the scaled data (the literature's convention),
``mse_original``, ``mae_original``, ``smape`` (original units), ``mase`` (against the
in-sample seasonal-naive error), ``coverage`` (Gaussian head, at ``interval_level``), and
for each baseline ``baseline_<name>_<metric>`` for the same metrics (``baseline_naive_mse``,
``baseline_linear_mase``, ...).

Run files: :meth:`ForecastingTask.prepare_run_dir` (called by the trainer) writes
``scaler.json`` (the scaler fitted on the training rows) and ``forecast.json`` (columns,
frequency, window sizes) into the run directory; ``rnnlab forecast`` reads them (and
writes them on first use when a run lacks them, from the training data of its config).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from rnnlab.config import DataConfig
from rnnlab.data.datasets import locate
from rnnlab.data.series import (
    ForecastData,
    Scaler,
    SeriesError,
    Split,
    TimeSeries,
    ett_rows_per_hour,
    ett_split,
    load_series,
    prepare_forecast_data,
    split_by_dates,
    split_by_fraction,
)
from rnnlab.errors import ConfigError, DataError
from rnnlab.forecasting import (
    LinearForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    backtest,
    seasonal_period,
)
from rnnlab.forecasting.backtest import BacktestResult
from rnnlab.io import atomic_write_text
from rnnlab.models import init_uniform_
from rnnlab.models.forecaster import RNNForecaster, forecast_loss
from rnnlab.registry import CELLS, cell_options
from rnnlab.tasks.base import DataSpec, Task, TaskData, model_device, register_task
from rnnlab.training.loader import ShuffledBatches

#: Named series and the data set each comes from (``rnnlab.data.datasets``).
NAMED_SERIES = ("etth1", "etth2", "ettm1", "ettm2", "airline", "sunspots")
#: The baselines scored beside the model in every evaluation.
BASELINES = ("naive", "seasonal_naive", "linear")
#: File names a run directory gets from :meth:`ForecastingTask.write_run_files`.
SCALER_FILE = "scaler.json"
META_FILE = "forecast.json"
META_FORMAT = 1

Part = Literal["train", "valid", "test"]


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
        decoder: ``direct`` (one linear map from the final state to all ``H`` steps) or
            ``seq2seq`` (an autoregressive decoder).
        instance_norm: ``None``, ``last``, ``mean`` or ``meanstd`` (per-window
            normalization, undone at the output).
        gaussian: predict a variance too, train by Gaussian NLL, report coverage.
        interval_level: central level of the prediction intervals.
        teacher_forcing: seq2seq only, the probability of feeding the true previous value.
        linear_ridge: ridge penalty of the linear baseline (0: least squares).
        channel_independent: forecast each target channel on its own with one shared
            model (PatchTST, SegRNN): a window of ``C`` channels becomes ``C`` univariate
            windows; needs targets only (no covariates or calendar features).
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
    decoder: Literal["direct", "seq2seq"] = "direct"
    instance_norm: Literal["last", "mean", "meanstd"] | None = "last"
    gaussian: bool = False
    interval_level: float = Field(default=0.9, gt=0.0, lt=1.0)
    teacher_forcing: float = Field(default=0.0, ge=0.0, le=1.0)
    linear_ridge: float = Field(default=0.0, ge=0.0)
    channel_independent: bool = False

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
        if self.channel_independent and (
            self.past_covariates or self.future_covariates or self.calendar
        ):
            raise ValueError(
                "data.channel_independent = true forecasts each target from its own past "
                "only: remove data.past_covariates, data.future_covariates and data.calendar"
            )
        return self


class ChannelIndependent(nn.Module):
    """One univariate forecaster applied to every channel: ``(B, L, C) -> (B, H, C)``.

    The channels of a window become ``C`` univariate windows, a batch of ``B * C``::

        inputs (B, L, C) -> (B*C, L, 1) -> forecaster -> (B*C, H, 1) -> (B, H, C)

    Args:
        forecaster: a model with one input and one output channel (and no covariates).
    """

    def __init__(self, forecaster: nn.Module) -> None:
        super().__init__()
        self.forecaster = forecaster

    @staticmethod
    def _split(x: Tensor) -> Tensor:
        batch, steps, channels = x.shape
        return x.permute(0, 2, 1).reshape(batch * channels, steps, 1)  # (B*C, T, 1)

    @staticmethod
    def _join(y: Tensor, batch: int) -> Tensor:
        steps = y.shape[1]
        return y.reshape(batch, -1, steps).permute(0, 2, 1)  # (B, T, C)

    def forward(
        self, inputs: Tensor, future_covariates: Tensor | None = None, targets: Tensor | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        batch = inputs.shape[0]
        truth = None if targets is None else self._split(targets)
        output = self.forecaster(self._split(inputs), None, truth)
        if isinstance(output, tuple):
            return self._join(output[0], batch), self._join(output[1], batch)
        return self._join(output, batch)


class WindowBatches:
    """The windows of a validation or test part, in time order, as ``(x, y, f)`` batches.

    Iterating gives batches of ``inputs (B, L, C_in)``, ``targets (B, H, C_out)`` and
    ``future_covariates (B, H, C_f)``; :meth:`ForecastingTask.evaluate` uses ``part`` to
    run the backtest (model and baselines) over the same windows.
    """

    def __init__(self, data: ForecastData, part: Part, batch_size: int, stride: int) -> None:
        self.data = data
        self.part = part
        self.batch_size = batch_size
        self.stride = stride

    def __len__(self) -> int:
        return math.ceil(math.ceil(len(self.data.part(self.part)) / self.stride) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        x, y, f = self.data.part(self.part).tensors()
        rows = torch.arange(0, x.shape[0], self.stride)
        for start in range(0, len(rows), self.batch_size):
            chosen = rows[start : start + self.batch_size]
            yield x[chosen], y[chosen], f[chosen]


@register_task("forecasting")
class ForecastingTask(Task):
    """Multi-step forecasting of one or many columns; MSE (or Gaussian NLL) loss."""

    Data = ForecastingData
    unit = "samples"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.forecast_data: ForecastData | None = None
        self._baselines: dict[str, nn.Module] = {}
        self._baseline_metrics: dict[tuple[Part, int], dict[str, float]] = {}

    # ------------------------------------------------------------------------- config

    def check_config(self) -> None:
        model = self.config.model
        if self.config.train.seq_len is not None:
            raise ConfigError(
                f"train.seq_len={self.config.train.seq_len} is not used by task "
                "'forecasting': its window length is data.input_length"
            )
        if model.embedding_size is not None:
            raise ConfigError(
                "model.embedding_size is for token inputs; task 'forecasting' has "
                "real-valued inputs"
            )
        if model.input_projection is not None:
            raise ConfigError(
                f"model.input_projection={model.input_projection} is not supported by task "
                "'forecasting' (the forecaster reads the input channels directly)"
            )
        data: ForecastingData = self.data_config
        if data.decoder == "seq2seq" and model.bidirectional:
            raise ConfigError("data.decoder='seq2seq' needs model.bidirectional = false")

    # --------------------------------------------------------------------------- data

    def source_path(self) -> Path:
        """The series file: ``data.path``, or the named data set located under the root."""
        data: ForecastingData = self.data_config
        if data.path is not None:
            return Path(data.path)
        return locate(str(data.dataset), data.root)

    def load_series(self) -> TimeSeries:
        """Load and check the series of ``[data]`` (a :class:`DataError` when it is bad)."""
        data: ForecastingData = self.data_config
        try:
            return load_series(
                self.source_path(),
                time_column=data.time_column,
                targets=data.targets,
                past_covariates=data.past_covariates,
                future_covariates=data.future_covariates,
                calendar=data.calendar,
                calendar_encoding=data.calendar_encoding,
                fill=data.fill,
                sort=data.sort,
            )
        except SeriesError as err:
            raise DataError(str(err)) from None

    def make_split(self, series: TimeSeries) -> Split:
        """The :class:`~rnnlab.data.series.Split` of ``[data]`` for ``series``."""
        data: ForecastingData = self.data_config
        if data.split == "ett":
            return ett_split(len(series), ett_rows_per_hour(series.freq))
        if data.split == "dates":
            return split_by_dates(series.timestamps, data.valid_start, data.test_start, data.end)
        return split_by_fraction(
            len(series), data.train_fraction, data.valid_fraction, data.test_fraction
        )

    def prepare(self) -> ForecastData:
        """Load, split, scale and window the series (cached on the task)."""
        if self.forecast_data is not None:
            return self.forecast_data
        data: ForecastingData = self.data_config
        series = self.load_series()
        try:
            split = self.make_split(series)
            self.forecast_data = prepare_forecast_data(
                series,
                split,
                data.input_length,
                data.horizon,
                stride=data.stride,
                scaling=None if data.scaling == "none" else data.scaling,
                eval_stride=1,
            )
        except SeriesError as err:
            raise DataError(f"{series.report.source}: {err}") from None
        self._check_period(self.forecast_data)
        return self.forecast_data

    @property
    def period(self) -> int:
        """The season of the seasonal-naive baseline and of MASE."""
        data: ForecastingData = self.data_config
        if data.period is not None:
            return data.period
        fd = self.forecast_data
        return seasonal_period(fd.series.freq if fd is not None else None)

    def _check_period(self, fd: ForecastData) -> None:
        data: ForecastingData = self.data_config
        if self.period > data.input_length:
            source = "data.period" if data.period is not None else "the frequency"
            raise ConfigError(
                f"the season {self.period} (from {source}) is longer than "
                f"data.input_length={data.input_length}: the seasonal-naive baseline needs a "
                "whole season of history; raise input_length or set data.period"
            )
        train_rows = fd.split.train[1] - fd.split.train[0]
        if train_rows <= self.period:
            raise DataError(
                f"the training part has {train_rows} rows, not more than the season "
                f"{self.period}: MASE is undefined; set data.period"
            )

    def build_data(self) -> TaskData:
        fd = self.prepare()
        data: ForecastingData = self.data_config
        batch = self.config.train.batch_size
        x, y, f = fd.train.tensors()  # (N, L, C_in), (N, H, C_out), (N, H, C_f)
        valid = WindowBatches(fd, "valid", batch, data.eval_stride) if fd.valid else None
        test = WindowBatches(fd, "test", batch, data.eval_stride) if fd.test else None
        if valid is None:
            raise DataError(
                "the validation part of the split is empty; it is needed for early "
                "stopping and best.pt (give it some rows)"
            )
        return TaskData(
            train=ShuffledBatches(
                (x.contiguous(), y.contiguous(), f.contiguous()),
                batch,
                shuffle=True,
                seed=self.config.train.seed,
            ),
            valid=valid,
            test=test,
            spec=DataSpec(
                num_features=fd.input_size,
                output_size=fd.output_size,
                extra={"future_size": fd.future_size, "horizon": fd.horizon},
            ),
        )

    # -------------------------------------------------------------------------- model

    def build_model(self, spec: DataSpec) -> nn.Module:
        cfg = self.config.model
        data: ForecastingData = self.data_config
        accepted = cell_options(cfg.cell)
        candidates: dict[str, Any] = {
            "num_layers": cfg.num_layers,
            "bidirectional": cfg.bidirectional,
            "dropout": cfg.dropout,
            "layer_norm": cfg.layer_norm,
            "recurrent_dropout": cfg.recurrent_dropout,
            "zoneout": cfg.zoneout,
            "weight_drop": cfg.weight_drop,
            "forget_bias": cfg.forget_bias,
            "nonlinearity": cfg.nonlinearity,
            "proj_size": cfg.proj_size,
        }
        kwargs = {k: v for k, v in candidates.items() if k in accepted}
        independent = data.channel_independent
        model: nn.Module = RNNForecaster(
            input_size=1 if independent else int(spec.num_features or 1),
            output_size=1 if independent else int(spec.output_size or 1),
            horizon=data.horizon,
            hidden_size=cfg.hidden_size,
            layer=CELLS.get(cfg.cell),
            layer_kwargs=kwargs,
            decoder=data.decoder,
            future_size=int(spec.extra.get("future_size", 0)),
            instance_norm=data.instance_norm,
            gaussian=data.gaussian,
            teacher_forcing=data.teacher_forcing,
        )
        if cfg.init_range is not None:
            init_uniform_(model, cfg.init_range)
        return ChannelIndependent(model) if independent else model

    # ------------------------------------------------------------------------ training

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float]]:
        inputs, targets, future = batch  # (B, L, C_in), (B, H, C_out), (B, H, C_f)
        data: ForecastingData = self.data_config
        if data.teacher_forcing > 0:
            output = model(inputs, future, targets=targets)
        else:
            output = model(inputs, future)
        if isinstance(output, tuple):
            output = (output[0].float(), output[1].float())
        else:
            output = output.float()
        loss = forecast_loss(output, targets)
        return loss, None, {"count": float(inputs.shape[0])}

    # ---------------------------------------------------------------------- evaluation

    def baselines(self) -> dict[str, nn.Module]:
        """The three baselines, the linear one fitted on the training windows (cached)."""
        if self._baselines:
            return self._baselines
        fd = self.prepare()
        data: ForecastingData = self.data_config
        self._baselines = {
            "naive": NaiveForecaster(fd.horizon, fd.output_size),
            "seasonal_naive": SeasonalNaiveForecaster(fd.horizon, self.period, fd.output_size),
            "linear": LinearForecaster(
                fd.input_length,
                fd.horizon,
                output_size=fd.output_size,
                decomposition=True,
                ridge=data.linear_ridge,
            ).fit(fd.train),
        }
        return self._baselines

    def backtest(
        self, forecaster: Any, part: Part = "test", stride: int | None = None
    ) -> BacktestResult:
        """Rolling-origin backtest of ``forecaster`` (the model or a baseline) over ``part``.

        Args:
            forecaster: a trained model or any callable ``f(inputs, future) -> forecast``.
            part: ``"test"`` (default) or ``"valid"``.
            stride: rows between origins (default ``data.eval_stride``).
        """
        data: ForecastingData = self.data_config
        fd = self.prepare()
        device = model_device(forecaster) if isinstance(forecaster, nn.Module) else None
        try:
            return backtest(
                forecaster,
                fd,
                part=part,
                stride=data.eval_stride if stride is None else stride,
                batch_size=max(self.config.train.batch_size, 256),
                level=data.interval_level,
                period=self.period,
                device=device,
            )
        except SeriesError as err:
            raise DataError(str(err)) from None

    def baseline_metrics(self, part: Part, stride: int | None = None) -> dict[str, float]:
        """``baseline_<name>_<metric>`` for every baseline on ``part`` (cached per part)."""
        data: ForecastingData = self.data_config
        key = (part, data.eval_stride if stride is None else stride)
        if key not in self._baseline_metrics:
            metrics: dict[str, float] = {}
            for name, baseline in self.baselines().items():
                result = self.backtest(baseline, part, key[1])
                metrics.update({f"baseline_{name}_{k}": v for k, v in result.metrics.items()})
            self._baseline_metrics[key] = metrics
        return dict(self._baseline_metrics[key])

    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        if not isinstance(loader, WindowBatches):
            raise TypeError(
                f"ForecastingTask.evaluate needs the WindowBatches of build_data, got "
                f"{type(loader).__name__}"
            )
        result = self.backtest(model, loader.part, loader.stride)
        metrics = dict(result.metrics)
        if result.variances is not None:
            mean = torch.from_numpy(result.predictions)
            var = torch.from_numpy(result.variances)
            metrics["nll"] = float(forecast_loss((mean, var), torch.from_numpy(result.targets)))
            metrics["loss"] = metrics["nll"]
        else:
            metrics["loss"] = metrics["mse"]
        metrics.update(self.baseline_metrics(loader.part, loader.stride))
        return metrics

    # ----------------------------------------------------------------------- run files

    def run_metadata(self) -> dict[str, Any]:
        """What inference needs besides the weights: columns, window sizes, frequency."""
        fd = self.prepare()
        series = fd.series
        return {
            "format": META_FORMAT,
            "time_column": self.data_config.time_column,
            "target_names": list(series.target_names),
            "past_names": list(series.past_names),
            "future_names": list(series.future_names),
            "calendar": list(self.data_config.calendar),
            "calendar_encoding": self.data_config.calendar_encoding,
            "calendar_names": list(series.calendar_names),
            "input_names": list(fd.input_names),
            "freq": series.freq,
            "period": self.period,
            "input_length": fd.input_length,
            "horizon": fd.horizon,
            "gaussian": self.data_config.gaussian,
            "interval_level": self.data_config.interval_level,
            "scaled": fd.scaler is not None,
            "last_timestamp": str(series.timestamps[-1]),
        }

    def prepare_run_dir(self, run_dir: str | os.PathLike[str], resume: bool = False) -> None:
        """Write ``scaler.json`` and ``forecast.json`` (the trainer calls it after
        :meth:`build_data`); on resume, check the saved scaler matches the one fitted now."""
        folder = Path(run_dir)
        saved = folder / SCALER_FILE
        fitted = self.prepare().scaler
        if resume and saved.is_file() and fitted is not None:
            try:
                old = Scaler.load(saved)
            except SeriesError as err:
                raise DataError(str(err)) from None
            a, b = old.to_dict(), fitted.to_dict()
            same = a["names"] == b["names"] and len(a["shift"]) == len(b["shift"])
            if not (
                same and np.allclose(a["shift"], b["shift"]) and np.allclose(a["scale"], b["scale"])
            ):
                raise DataError(
                    f"the training data changed since {saved} was written: its scaler no "
                    "longer matches the training rows; start a new run"
                )
        self.write_run_files(folder)

    def write_run_files(self, run_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``scaler.json`` and ``forecast.json`` into ``run_dir`` (atomically).

        Returns:
            The paths written.
        """
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        fd = self.prepare()
        written = []
        if fd.scaler is not None:
            fd.scaler.save(folder / SCALER_FILE)
            written.append(folder / SCALER_FILE)
        atomic_write_text(folder / META_FILE, json.dumps(self.run_metadata(), indent=2))
        written.append(folder / META_FILE)
        return written
