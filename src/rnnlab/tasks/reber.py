"""The embedded Reber grammar as a task: next-symbol prediction with one long-range step.

Strings ``B T <reber> T E`` or ``B P <reber> P E`` (``rnnlab.data.synthetic.embedded_reber``)
are read one symbol per step (one-hot over ``BTSXPVE``), and the model predicts the next
symbol at every step (cross-entropy against the symbol that actually follows). The inner
Reber string is learned quickly by any cell; the second-to-last symbol repeats the second one
across the whole inner string, so predicting it needs memory (Hochreiter and Schmidhuber
1997). That step is scored on its own:

- ``long_range_accuracy``: at the repeated T/P, the symbol ranked first is the right one. A
  model that forgot the branch scores 0.5 (``baseline_long_range_accuracy``).
- ``accuracy``: on every other step, the symbol ranked first is one the grammar allows next
  (the classic criterion of Fahlman 1991; the step after the first ``B`` allows T and P).

Config::

    [task]
    name = "reber"

    [data]
    max_length = 40        # longer strings are redrawn; None: no limit
    train_samples = 5000
    valid_samples = 500
    test_samples = 1000
    seed = 1234            # split k (train, valid, test) uses seed + k

Metrics: ``loss`` = ``cross_entropy`` (nats per valid step), ``accuracy``,
``long_range_accuracy``, ``baseline_long_range_accuracy``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from rnnlab.config import DataConfig
from rnnlab.data.synthetic import REBER_SYMBOLS, embedded_reber
from rnnlab.errors import ConfigError
from rnnlab.models import (
    build_sequence_model,
)
from rnnlab.tasks.base import DataSpec, Task, TaskData, in_memory_data, model_device, register_task
from rnnlab.tasks.copy import StepHead

REBER_LONG_RANGE_BASELINE = 0.5
IGNORE = -100


class ReberData(DataConfig):
    """``[data]`` of the embedded Reber task.

    Attributes:
        max_length: strings longer than this many symbols are redrawn (at least 9);
            ``None`` keeps every string.
        train_samples, valid_samples, test_samples: strings per split.
        seed: the data seed; split ``k`` (train, valid, test) uses ``seed + k``.
    """

    max_length: int | None = Field(default=None, ge=9)
    train_samples: int = Field(default=5000, gt=0)
    valid_samples: int = Field(default=500, gt=0)
    test_samples: int = Field(default=1000, gt=0)
    seed: int = 1234


def _trim(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Cut a padded batch to its longest sequence (the data set pads to its own longest)."""
    inputs, next_symbol, allowed, lengths, long_range = batch
    steps = int(lengths.max())
    return (
        inputs[:, :steps],  # (B, T, 7)
        next_symbol[:, :steps],  # (B, T)
        allowed[:, :steps],  # (B, T, 7)
        lengths,  # (B,)
        long_range[:, :steps],  # (B, T)
    )


@register_task("reber")
class ReberTask(Task):
    """Embedded Reber: one-hot symbols ``(B, T, 7)`` with lengths -> next-symbol logits."""

    Data = ReberData
    unit = "tokens"

    def check_config(self) -> None:
        if self.config.train.seq_len is not None:
            raise ConfigError(
                f"train.seq_len={self.config.train.seq_len} is not used by task 'reber': "
                "each string is one sequence"
            )
        if self.config.model.embedding_size is not None:
            raise ConfigError(
                "model.embedding_size is for token inputs; task 'reber' reads one-hot "
                "symbols (use model.input_projection)"
            )
        if self.config.model.bidirectional:
            raise ConfigError(
                "model.bidirectional = true would let task 'reber' read the symbol it must "
                "predict; next-symbol prediction needs a forward-only model"
            )

    def _split(self, samples: int, offset: int) -> tuple[Tensor, ...]:
        data: ReberData = self.data_config
        b = embedded_reber(samples, seed=data.seed + offset, max_length=data.max_length)
        return (b.inputs, b.next_symbol, b.allowed, b.lengths, b.long_range)

    def build_data(self) -> TaskData:
        data: ReberData = self.data_config
        return in_memory_data(
            self._split(data.train_samples, 0),
            self._split(data.valid_samples, 1),
            self._split(data.test_samples, 2),
            self.config,
            DataSpec(num_features=len(REBER_SYMBOLS), num_classes=len(REBER_SYMBOLS)),
        )

    def build_model(self, spec: DataSpec) -> nn.Module:
        classes = spec.num_classes or 1
        return build_sequence_model(
            self.config.model, spec.num_features, None, lambda size: StepHead(size, classes)
        )

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float]]:
        inputs, next_symbol, _, lengths, _ = _trim(batch)
        logits, _ = model(inputs, lengths.cpu())  # (B, T, 7)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), next_symbol.flatten(), ignore_index=IGNORE
        )
        return loss, None, {"count": float(lengths.sum())}

    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        device = model_device(model)
        total_ce = torch.zeros((), dtype=torch.float64)
        steps = 0
        grammatical = 0
        ordinary = 0
        long_hits = 0
        long_steps = 0
        for batch in loader:
            inputs, next_symbol, allowed, lengths, long_range = _trim(self.to_device(batch, device))
            logits, _ = model(inputs, lengths.cpu())  # (B, T, 7)
            valid = next_symbol != IGNORE  # (B, T)
            total_ce += (
                F.cross_entropy(
                    logits.float().flatten(0, 1),
                    next_symbol.flatten(),
                    ignore_index=IGNORE,
                    reduction="sum",
                )
                .double()
                .cpu()
            )
            steps += int(valid.sum())
            top = logits.argmax(dim=-1)  # (B, T)
            in_allowed = allowed.gather(-1, top.unsqueeze(-1)).squeeze(-1) > 0  # (B, T)
            rest = valid & ~long_range
            grammatical += int((in_allowed & rest).sum())
            ordinary += int(rest.sum())
            long_hits += int(((top == next_symbol) & long_range).sum())
            long_steps += int(long_range.sum())
        cross_entropy = float(total_ce / max(steps, 1))
        return {
            "loss": cross_entropy,
            "cross_entropy": cross_entropy,
            "accuracy": grammatical / max(ordinary, 1),
            "long_range_accuracy": long_hits / max(long_steps, 1),
            "baseline_long_range_accuracy": REBER_LONG_RANGE_BASELINE,
        }
