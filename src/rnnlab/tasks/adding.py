"""The adding problem as a task: regression of the sum of two marked values (MSE).

Each sequence has ``T`` steps of two features, a value ``u_t ~ U(0, 1)`` and a marker that is 1
at exactly two steps; the target is the sum of the two marked values (see
``rnnlab.data.synthetic.adding_problem``). Always predicting the mean scores MSE ``1/6``; a
model that beats it clearly has learned to find and add the marked values across ``T``
steps, which is hard for simple RNNs at long ``T`` and easy for LSTM and GRU (Hochreiter and
Schmidhuber 1997; Le et al. 2015).

Config::

    [task]
    name = "adding"

    [data]
    length = 50            # T
    train_samples = 10000
    valid_samples = 1000
    test_samples = 1000
    seed = 1234            # the data seed (splits use seed, seed + 1, seed + 2)

Metrics: ``loss`` = ``mse`` (mean squared error), ``baseline_mse`` (predicting the
population mean 1 on the same split, about 1/6) and ``relative_mse`` = ``mse / baseline_mse``
(1 = no better than the mean, 0 = perfect).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from rnnlab.config import DataConfig
from rnnlab.data.synthetic import adding_problem
from rnnlab.errors import ConfigError
from rnnlab.models import (
    RegressionHead,
    build_sequence_model,
)
from rnnlab.tasks.base import DataSpec, Task, TaskData, in_memory_data, model_device, register_task

ADDING_TARGET_MEAN = 1.0


class AddingData(DataConfig):
    """``[data]`` of the adding task.

    Attributes:
        length: sequence length ``T`` (at least 2).
        train_samples, valid_samples, test_samples: sequences per split.
        seed: the data seed; split ``k`` (train, valid, test) uses ``seed + k``.
    """

    length: int = Field(default=50, ge=2)
    train_samples: int = Field(default=10000, gt=0)
    valid_samples: int = Field(default=1000, gt=0)
    test_samples: int = Field(default=1000, gt=0)
    seed: int = 1234


@register_task("adding")
class AddingTask(Task):
    """Adding problem: ``(B, T, 2)`` sequences -> one real value, MSE loss."""

    Data = AddingData
    unit = "samples"

    def check_config(self) -> None:
        if self.config.train.seq_len is not None:
            raise ConfigError(
                f"train.seq_len={self.config.train.seq_len} is not used by task 'adding': "
                "its sequence length is data.length"
            )
        if self.config.model.embedding_size is not None:
            raise ConfigError(
                "model.embedding_size is for token inputs; task 'adding' has real-valued "
                "inputs (use model.input_projection)"
            )

    def build_data(self) -> TaskData:
        data: AddingData = self.data_config
        train = adding_problem(data.train_samples, data.length, seed=data.seed)
        valid = adding_problem(data.valid_samples, data.length, seed=data.seed + 1)
        test = adding_problem(data.test_samples, data.length, seed=data.seed + 2)
        return in_memory_data(
            train, valid, test, self.config, DataSpec(num_features=2, output_size=1)
        )

    def build_model(self, spec: DataSpec) -> nn.Module:
        cfg = self.config.model
        return build_sequence_model(
            cfg, spec.num_features, None, lambda size: RegressionHead(size, 1, cfg.pooling)
        )

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float]]:
        inputs, targets = batch  # (B, T, 2), (B, 1)
        prediction, _ = model(inputs)  # (B, 1)
        loss = F.mse_loss(prediction.float(), targets)
        return loss, None, {"count": float(inputs.shape[0])}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        device = model_device(model)
        squared = torch.zeros((), dtype=torch.float64)
        baseline = torch.zeros((), dtype=torch.float64)
        count = 0
        for batch in loader:
            inputs, targets = self.to_device(batch, device)
            prediction, _ = model(inputs)  # (B, 1)
            squared += ((prediction.float() - targets) ** 2).sum().double().cpu()
            baseline += ((targets - ADDING_TARGET_MEAN) ** 2).sum().double().cpu()
            count += targets.numel()
        mse = float(squared / count)
        base = float(baseline / count)
        return {"loss": mse, "mse": mse, "baseline_mse": base, "relative_mse": mse / base}
