"""Sliding windows over a series as a torch ``Dataset``, and the whole split-scale-window recipe.

Window ``i`` starts at row ``s = i * stride`` of its segment::

    rows:   s ............ s+L ............ s+L+H
            [ inputs (L)   )[ targets (H)   )
                            [ future covariates (H) )

Each item is a dict of float32 tensors: ``inputs (L, C_in)``, ``targets (H, C_out)`` and
``future_covariates (H, C_f)`` (``C_f`` may be 0). The default ``DataLoader`` collation
stacks them into ``(B, L, C_in)``, ``(B, H, C_out)``, ``(B, H, C_f)``.

:func:`prepare_forecast_data` does the usual recipe: fit the scaler on the training rows
only, scale every row with it, and cut each part into windows (valid and test windows reach
``input_length`` rows back into the part before them, see :mod:`rnnlab.data.series.split`).
Model inputs are ``[targets, past covariates, future covariates, calendar]`` in that column
order, so the targets are input channels ``0 .. C_out - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from rnnlab.data.series.errors import SeriesError
from rnnlab.data.series.load import TimeSeries
from rnnlab.data.series.scaling import Scaler, ScalingKind
from rnnlab.data.series.split import Part, Split


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SeriesError(f"{name} must be an integer >= 1, got {value!r}")


class WindowDataset(Dataset[dict[str, Tensor]]):
    """Windows ``(inputs, targets, future_covariates)`` over one segment of a series.

    Args:
        inputs: ``(T, C_in)`` model inputs.
        targets: ``(T, C_out)`` values to forecast.
        input_length: rows of history per window ``L``.
        horizon: rows to forecast ``H``.
        stride: rows between consecutive window starts.
        future: ``(T, C_f)`` known-future covariates, or ``None``.
        first_row: the series row of ``inputs[0]``, to report forecast origins.
        name: what to call the segment in messages (``"train"``...).

    Example:
        >>> ds = WindowDataset(np.arange(10.0)[:, None], np.arange(10.0)[:, None], 3, 2)
        >>> len(ds), ds[0]["inputs"].flatten().tolist(), ds[0]["targets"].flatten().tolist()
        (6, [0.0, 1.0, 2.0], [3.0, 4.0])
    """

    def __init__(
        self,
        inputs: np.ndarray | Tensor,
        targets: np.ndarray | Tensor,
        input_length: int,
        horizon: int,
        stride: int = 1,
        future: np.ndarray | Tensor | None = None,
        first_row: int = 0,
        name: str = "series",
    ) -> None:
        _check_positive("input_length", input_length)
        _check_positive("horizon", horizon)
        _check_positive("stride", stride)
        self.inputs = torch.as_tensor(inputs, dtype=torch.float32)  # (T, C_in)
        self.targets = torch.as_tensor(targets, dtype=torch.float32)  # (T, C_out)
        rows = self.inputs.shape[0]
        if self.inputs.dim() != 2 or self.targets.dim() != 2 or self.targets.shape[0] != rows:
            raise SeriesError(
                f"inputs and targets must be (T, C) with the same T, got "
                f"{tuple(self.inputs.shape)} and {tuple(self.targets.shape)}"
            )
        if future is None:
            self.future = torch.zeros(rows, 0)
        else:
            self.future = torch.as_tensor(future, dtype=torch.float32)  # (T, C_f)
            if self.future.dim() != 2 or self.future.shape[0] != rows:
                raise SeriesError(
                    f"future must be (T, C_f) with T={rows}, got {tuple(self.future.shape)}"
                )
        if rows < input_length + horizon:
            raise SeriesError(
                f"the {name} part has {rows} rows, fewer than input_length + horizon = "
                f"{input_length} + {horizon} = {input_length + horizon}"
            )
        self.input_length = input_length
        self.horizon = horizon
        self.stride = stride
        self.first_row = first_row
        self.name = name
        self._count = (rows - input_length - horizon) // stride + 1

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not -self._count <= index < self._count:
            raise IndexError(f"window {index} out of range for {self._count} windows")
        start = (index % self._count) * self.stride
        cut = start + self.input_length
        end = cut + self.horizon
        return {
            "inputs": self.inputs[start:cut],  # (L, C_in)
            "targets": self.targets[cut:end],  # (H, C_out)
            "future_covariates": self.future[cut:end],  # (H, C_f)
        }

    @property
    def origins(self) -> np.ndarray:
        """Series row of the first target of each window, ``(N,)``."""
        return self.first_row + self.input_length + self.stride * np.arange(self._count)

    def tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """All windows stacked: ``(N, L, C_in)``, ``(N, H, C_out)``, ``(N, H, C_f)`` (views)."""
        length, horizon, stride = self.input_length, self.horizon, self.stride
        n = self._count
        x = self.inputs.unfold(0, length, stride)[:n].transpose(1, 2)  # (N, L, C_in)
        y = self.targets[length:].unfold(0, horizon, stride)[:n].transpose(1, 2)  # (N, H, C_out)
        f = self.future[length:].unfold(0, horizon, stride)[:n].transpose(1, 2)  # (N, H, C_f)
        return x, y, f


@dataclass
class ForecastData:
    """A series split, scaled and cut into windows; what a forecasting run needs.

    Attributes:
        series: the loaded series (original units).
        split: target rows of each part.
        scaler: fitted on the training rows of ``series.values``; ``None`` without scaling.
        input_length: ``L``.
        horizon: ``H``.
        train: training windows.
        valid: validation windows, ``None`` when the part is empty.
        test: test windows, ``None`` when the part is empty.
        input_names: the columns of ``inputs``.
        target_names: the columns of ``targets`` (input channels ``0 .. C_out - 1``).
        future_names: the columns of ``future_covariates``.
    """

    series: TimeSeries
    split: Split
    scaler: Scaler | None
    input_length: int
    horizon: int
    train: WindowDataset
    valid: WindowDataset | None
    test: WindowDataset | None
    input_names: tuple[str, ...]
    target_names: tuple[str, ...]
    future_names: tuple[str, ...]

    @property
    def input_size(self) -> int:
        return len(self.input_names)

    @property
    def output_size(self) -> int:
        return len(self.target_names)

    @property
    def future_size(self) -> int:
        return len(self.future_names)

    def part(self, name: Part) -> WindowDataset:
        """The windows of part ``name``; an error when it is empty."""
        dataset: WindowDataset | None = getattr(self, name)
        if dataset is None:
            raise SeriesError(f"the {name} part of this split is empty")
        return dataset

    def to_original(self, targets: np.ndarray | Tensor) -> np.ndarray:
        """Target values ``(..., C_out)`` in scaled units, back in original units."""
        array = targets.detach().cpu().double().numpy() if isinstance(targets, Tensor) else targets
        if self.scaler is None:
            return np.asarray(array, dtype=np.float64)
        return self.scaler.inverse_transform(np.asarray(array, dtype=np.float64), self.target_names)

    def train_targets(self) -> np.ndarray:
        """``(T_train, C_out)`` training target rows in original units (for MASE)."""
        start, end = self.split.train
        return self.series.targets[start:end]


def prepare_forecast_data(
    series: TimeSeries,
    split: Split,
    input_length: int,
    horizon: int,
    stride: int = 1,
    scaling: ScalingKind | None = "zscore",
    eval_stride: int = 1,
) -> ForecastData:
    """Fit scaling on the training rows, scale, and cut each part into windows.

    Args:
        series: the loaded series.
        split: target rows per part (:func:`~rnnlab.data.series.split.ett_split` ...).
        input_length: rows of history per window.
        horizon: rows to forecast.
        stride: rows between training windows.
        scaling: ``"zscore"``, ``"minmax"`` or ``None``. Calendar features are not scaled.
        eval_stride: rows between validation and test windows (1 in the literature).

    Returns:
        The :class:`ForecastData`.

    Raises:
        SeriesError: when the split does not fit the series or a part is shorter than
            ``input_length + horizon``.
    """
    _check_positive("input_length", input_length)
    _check_positive("horizon", horizon)
    split.check_rows(len(series))
    train_start, train_end = split.train
    scaler = None
    values = series.values
    if scaling is not None:
        scaler = Scaler(scaling).fit(values[train_start:train_end], series.value_names)
        values = scaler.transform(values)
    n_targets = len(series.target_names)
    n_known = len(series.future_names)
    inputs = np.concatenate([values, series.calendar], axis=1)  # (T, C_in)
    targets = values[:, :n_targets]  # (T, C_out)
    future = np.concatenate(
        [values[:, values.shape[1] - n_known :], series.calendar], axis=1
    )  # (T, C_f)
    datasets: dict[str, WindowDataset | None] = {}
    for name in ("train", "valid", "test"):
        start, end = split.part(name)
        if start == end:
            datasets[name] = None
            continue
        begin, end = split.window_rows(name, input_length)
        datasets[name] = WindowDataset(
            inputs[begin:end],
            targets[begin:end],
            input_length,
            horizon,
            stride=stride if name == "train" else eval_stride,
            future=future[begin:end],
            first_row=begin,
            name=name,
        )
    train = datasets["train"]
    if train is None:  # Split forbids an empty training part; this keeps mypy informed
        raise SeriesError("the training part is empty")
    return ForecastData(
        series=series,
        split=split,
        scaler=scaler,
        input_length=input_length,
        horizon=horizon,
        train=train,
        valid=datasets["valid"],
        test=datasets["test"],
        input_names=series.value_names + series.calendar_names,
        target_names=series.target_names,
        future_names=series.future_names + series.calendar_names,
    )
