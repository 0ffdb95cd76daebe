"""The Mackey-Glass series (tau = 17) as a task: one-step or multi-step forecasting.

The chaotic series of ``rnnlab.data.synthetic.mackey_glass`` is split chronologically into
train, valid and test parts (70/15/15 by default), standardized with the mean and standard
deviation of the train part, and cut into windows: the model reads ``window`` past values
and predicts the next ``horizon`` (1 = one-step prediction; more = a direct multi-step
forecast)::

    series:  x_1 ... x_w | x_{w+1} ... x_{w+h}      window k starts at k * stride
             (inputs)      (targets)

Config::

    [task]
    name = "mackey_glass"

    [data]
    series_length = 6000
    window = 50            # the sequence length T the model reads
    horizon = 1
    stride = 1
    valid_fraction = 0.15
    test_fraction = 0.15
    seed = 1234            # history perturbation; constant_history = true: x = 1.2

Metrics (on the standardized scale): ``loss`` = ``mse``, ``rmse``, ``nrmse`` (RMSE divided by
the standard deviation of the split's targets: the mean predictor scores 1) and
``persistence_nrmse`` (repeating the last input value, the naive baseline).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from rnnlab.config import DataConfig
from rnnlab.data.synthetic import mackey_glass, prediction_windows
from rnnlab.errors import ConfigError, DataError
from rnnlab.models import (
    RegressionHead,
    build_sequence_model,
)
from rnnlab.tasks.base import DataSpec, Task, TaskData, in_memory_data, model_device, register_task


class MackeyGlassData(DataConfig):
    """``[data]`` of the Mackey-Glass task.

    Attributes:
        series_length: samples of the series (one per time unit).
        window: past values the model reads (the sequence length ``T``).
        horizon: future values it predicts.
        stride: shift between consecutive windows.
        valid_fraction, test_fraction: the last parts of the series, in time order.
        seed: history perturbation seed.
        constant_history: the classic constant history ``x = 1.2`` instead (no seed).
    """

    series_length: int = Field(default=6000, gt=0)
    window: int = Field(default=50, ge=1)
    horizon: int = Field(default=1, ge=1)
    stride: int = Field(default=1, ge=1)
    valid_fraction: float = Field(default=0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.15, gt=0.0, lt=0.5)
    seed: int = 1234
    constant_history: bool = False

    @model_validator(mode="after")
    def _fits(self) -> MackeyGlassData:
        smallest = min(self.valid_fraction, self.test_fraction) * self.series_length
        if smallest < self.window + self.horizon:
            raise ValueError(
                f"data.series_length={self.series_length} leaves {int(smallest)} samples in the "
                f"smallest split, fewer than data.window + data.horizon = "
                f"{self.window + self.horizon}"
            )
        return self


@register_task("mackey_glass")
class MackeyGlassTask(Task):
    """Mackey-Glass forecasting: windows ``(B, T, 1)`` -> the next ``horizon`` values, MSE."""

    Data = MackeyGlassData
    unit = "samples"

    def check_config(self) -> None:
        if self.config.train.seq_len is not None:
            raise ConfigError(
                f"train.seq_len={self.config.train.seq_len} is not used by task "
                "'mackey_glass': its sequence length is data.window"
            )
        if self.config.model.embedding_size is not None:
            raise ConfigError(
                "model.embedding_size is for token inputs; task 'mackey_glass' has "
                "real-valued inputs (use model.input_projection)"
            )

    def splits(self) -> tuple[Tensor, Tensor, Tensor]:
        """The standardized train, valid and test parts of the series, in time order."""
        data: MackeyGlassData = self.data_config
        seed = None if data.constant_history else data.seed
        series = mackey_glass(data.series_length, seed=seed)  # (N,)
        n_valid = round(data.valid_fraction * data.series_length)
        n_test = round(data.test_fraction * data.series_length)
        n_train = data.series_length - n_valid - n_test
        if n_train < data.window + data.horizon:
            raise DataError(
                f"the train part has {n_train} samples, fewer than data.window + data.horizon "
                f"= {data.window + data.horizon}"
            )
        train = series[:n_train]
        mean, std = train.mean(), train.std()
        scaled = (series - mean) / std
        return (
            scaled[:n_train],
            scaled[n_train : n_train + n_valid],
            scaled[n_train + n_valid :],
        )

    def build_data(self) -> TaskData:
        data: MackeyGlassData = self.data_config
        train, valid, test = (
            prediction_windows(p, data.window, data.horizon, data.stride) for p in self.splits()
        )
        spec = DataSpec(num_features=1, output_size=data.horizon)
        return in_memory_data(train, valid, test, self.config, spec)

    def build_model(self, spec: DataSpec) -> nn.Module:
        cfg = self.config.model
        return build_sequence_model(
            cfg,
            spec.num_features,
            None,
            lambda size: RegressionHead(size, spec.output_size or 1, cfg.pooling),
        )

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float]]:
        inputs, targets = batch  # (B, T, 1), (B, horizon)
        prediction, _ = model(inputs)  # (B, horizon)
        loss = F.mse_loss(prediction.float(), targets)
        return loss, None, {"count": float(inputs.shape[0])}

    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        device = model_device(model)
        squared = torch.zeros((), dtype=torch.float64)
        persistence = torch.zeros((), dtype=torch.float64)
        all_targets = []
        for batch in loader:
            inputs, targets = self.to_device(batch, device)
            prediction, _ = model(inputs)  # (B, horizon)
            squared += ((prediction.float() - targets) ** 2).sum().double().cpu()
            last = inputs[:, -1, :1]  # (B, 1)
            persistence += ((last - targets) ** 2).sum().double().cpu()
            all_targets.append(targets.double().cpu())
        joined = torch.cat(all_targets)  # (N, horizon)
        count = joined.numel()
        spread = float(joined.std()) if count > 1 else 1.0
        mse = float(squared / count)
        return {
            "loss": mse,
            "mse": mse,
            "rmse": mse**0.5,
            "nrmse": mse**0.5 / spread,
            "persistence_nrmse": float(persistence / count) ** 0.5 / spread,
        }
