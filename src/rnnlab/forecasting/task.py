"""Time series forecasting as a task: a CSV or named series -> multi-step forecasts.

The series (a named data set or a CSV/Parquet file) is loaded and checked by
:mod:`rnnlab.data.series`, split in time (the ETT protocol, fractions or dates), scaled with
statistics of the training rows only, and cut into windows of ``input_length`` rows of
history and ``horizon`` rows to forecast::

    rows:   s ............ s+L ............ s+L+H
            [ inputs (L)   )[ targets (H)   )          one window, origin s+L

The model is :class:`~rnnlab.forecasting.model.RNNForecaster` over the cell of ``[model]``
(any registered cell and its extras, built by :func:`rnnlab.models.stack.build_recurrent`),
with a direct multi-horizon head (default) or a sequence-to-sequence decoder, or
:class:`~rnnlab.forecasting.segment_model.SegmentForecaster` (``decoder = "segments"``:
segment-wise recurrence, parallel decoding), optional instance normalization (RevIN
included), a point loss (``data.loss``: MSE, MAE or Huber) and an optional Gaussian head.
Because ``[model]`` describes the recurrent stack shared by every task, the forecasting head
is set in ``[data]`` (``decoder``, ``instance_norm``, ``gaussian``, ...;
:class:`~rnnlab.forecasting.settings.ForecastingData`).

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

Evaluation is the rolling-origin backtest of :func:`rnnlab.forecasting.backtest.backtest` over every
``eval_stride``-th window of the part (stride 1: every origin, as in the literature), and it
always scores three baselines on the same windows, fitted in the same run:

- ``naive``: the last observed value;
- ``seasonal_naive``: the value one season back (``period``, from the frequency by default);
- ``linear``: a DLinear-style linear map of each channel's window fitted by least squares on
  the training windows (:class:`~rnnlab.forecasting.baselines.LinearForecaster`).

Metrics of :meth:`ForecastingTask.evaluate`: ``loss`` (MSE, or the Gaussian NLL with
``gaussian = true``), ``mse`` and ``mae`` on the scaled data (the literature's convention),
``mse_original``, ``mae_original``, ``smape`` (original units), ``mase`` (against the
in-sample seasonal-naive error), ``coverage`` (Gaussian head, at ``interval_level``), and
for each baseline ``baseline_<name>_<metric>`` for the same metrics (``baseline_naive_mse``,
``baseline_linear_mase``, ...).

Run files: :meth:`ForecastingTask.prepare_run_dir` (called by the trainer) writes
``scaler.json`` (the scaler fitted on the training rows) and ``forecast.json`` (columns,
frequency, window sizes) into the run directory (:mod:`rnnlab.forecasting.run_files`);
:func:`rnnlab.forecasting.predict.forecast` reads them (and writes them on first use when a
run lacks them, from the training data of its config).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from rnnlab.data.datasets import locate
from rnnlab.data.loaders import ShuffledBatches
from rnnlab.data.series import (
    ForecastData,
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
from rnnlab.forecasting import run_files
from rnnlab.forecasting.backtest import BacktestResult, backtest
from rnnlab.forecasting.baselines import (
    LinearForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    is_sub_yearly,
    seasonal_period,
)
from rnnlab.forecasting.metrics import compact_metrics
from rnnlab.forecasting.model import ChannelIndependent, RNNForecaster, forecast_loss
from rnnlab.forecasting.run_files import SCALER_FILE
from rnnlab.forecasting.seasonal import SeasonalDifference
from rnnlab.forecasting.segment_model import SegmentForecaster
from rnnlab.forecasting.settings import NAMED_SERIES, ForecastingData
from rnnlab.models.sequence import init_uniform_
from rnnlab.models.stack import build_recurrent
from rnnlab.tasks.base import DataSpec, Task, TaskData, model_device, register_task

#: The baselines scored beside the model in every evaluation.
BASELINES = ("naive", "seasonal_naive", "linear")

Part = Literal["train", "valid", "test"]


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
        if data.decoder in ("seq2seq", "segments") and model.bidirectional:
            raise ConfigError(f"data.decoder={data.decoder!r} needs model.bidirectional = false")

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
        if data.period is None and self.period == 1 and is_sub_yearly(fd.series.freq):
            warnings.warn(
                f"the frequency {fd.series.freq!r} has no natural season: the seasonal-naive "
                "baseline and MASE use period 1 (seasonal naive equals naive); set "
                "data.period to the series' season",
                UserWarning,
                stacklevel=2,
            )
        if self.period > data.input_length:
            source = "data.period" if data.period is not None else "the frequency"
            raise ConfigError(
                f"the season {self.period} (from {source}) is longer than "
                f"data.input_length={data.input_length}: the seasonal-naive baseline needs a "
                "whole season of history; raise input_length or set data.period"
            )
        if data.seasonal_difference and self.period >= data.input_length:
            raise ConfigError(
                f"data.seasonal_difference = true reads x_t - x_(t-{self.period}): "
                f"data.input_length={data.input_length} must exceed the period {self.period}"
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
        model = self._build_forecaster(spec)
        data: ForecastingData = self.data_config
        if data.seasonal_difference:
            return SeasonalDifference(model, self.period, data.horizon, int(spec.output_size or 1))
        return model

    def _build_forecaster(self, spec: DataSpec) -> nn.Module:
        cfg = self.config.model
        data: ForecastingData = self.data_config
        norm = None if data.instance_norm == "off" else data.instance_norm
        if data.decoder == "segments":
            segments = SegmentForecaster(
                channels=int(spec.output_size or 1),
                horizon=data.horizon,
                segment_length=data.segment_length,
                hidden_size=cfg.hidden_size,
                build_layer=partial(build_recurrent, cfg),
                instance_norm=norm,
                channel_embedding=data.channel_embedding,
                dropout=data.head_dropout,
                gaussian=data.gaussian,
            )
            if cfg.init_range is not None:
                init_uniform_(segments, cfg.init_range)
            return segments
        independent = data.channel_independent
        model: nn.Module = RNNForecaster(
            input_size=1 if independent else int(spec.num_features or 1),
            output_size=1 if independent else int(spec.output_size or 1),
            horizon=data.horizon,
            hidden_size=cfg.hidden_size,
            build_layer=partial(build_recurrent, cfg),
            decoder=data.decoder,
            future_size=int(spec.extra.get("future_size", 0)),
            instance_norm=norm,
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
        loss = forecast_loss(output, targets, data.loss)
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

    def console_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """The compact subset of ``metrics`` for console lines
        (:func:`~rnnlab.forecasting.metrics.compact_metrics`); ``metrics.jsonl`` keeps all."""
        return compact_metrics(metrics)

    # ----------------------------------------------------------------------- run files

    def run_metadata(self) -> dict[str, Any]:
        """What inference needs besides the weights: columns, window sizes, frequency
        (:func:`rnnlab.forecasting.run_files.run_metadata`)."""
        return run_files.run_metadata(self.prepare(), self.data_config, self.period)

    def prepare_run_dir(self, run_dir: str | os.PathLike[str], resume: bool = False) -> None:
        """Write ``scaler.json`` and ``forecast.json`` (the trainer calls it after
        :meth:`build_data`); on resume, check the saved scaler matches the one fitted now."""
        folder = Path(run_dir)
        if resume:
            run_files.check_saved_scaler(folder / SCALER_FILE, self.prepare().scaler)
        self.write_run_files(folder)

    def write_run_files(self, run_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``scaler.json`` and ``forecast.json`` into ``run_dir`` (atomically).

        Returns:
            The paths written.
        """
        return run_files.write_run_files(run_dir, self.prepare().scaler, self.run_metadata())


__all__ = [
    "BASELINES",
    "NAMED_SERIES",
    "ForecastingData",
    "ForecastingTask",
    "WindowBatches",
]
