"""The copy-memory task: recall 10 symbols after a delay of ``T`` blank steps.

Each sequence has ``T + 20`` token steps (see ``rnnlab.data.synthetic.copy_memory``)::

    input:   s_1 .. s_10   0 .. 0 (T - 1 blanks)   :   0 .. 0 (10 blanks)
    target:  0 ....................... 0 (T + 10 blanks)  s_1 .. s_10

The model reads one token per step (an embedding of ``model.embedding_size``, default
``hidden_size``) and predicts a token at every step (a linear layer on each output,
:class:`StepHead`). A memoryless model predicts blanks, then guesses uniformly among the 8
symbols: cross-entropy ``10 log(8) / (T + 20)`` per step and recall accuracy 1/8 (Arjovsky,
Shah and Bengio 2016). Recalling the symbols needs a memory that survives ``T`` steps.

Config::

    [task]
    name = "copy"

    [data]
    length = 100           # the delay T
    train_samples = 10000
    valid_samples = 1000
    test_samples = 1000
    seed = 1234            # split k (train, valid, test) uses seed + k

Metrics: ``loss`` = ``cross_entropy`` (nats per step, mean over every step),
``baseline_cross_entropy`` (the memoryless ``10 log(8) / (T + 20)``), ``accuracy`` (all
steps), ``recall_accuracy`` (the 10 recalled steps only; baseline 1/8 in
``baseline_recall_accuracy``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from rnnlab.config import DataConfig
from rnnlab.data.synthetic import (
    COPY_ALPHABET_SIZE,
    COPY_MEMORY_LENGTH,
    copy_memory,
    copy_memory_baseline_accuracy,
    copy_memory_baseline_cross_entropy,
    copy_memory_vocabulary_size,
)
from rnnlab.errors import ConfigError
from rnnlab.models import (
    build_sequence_model,
)
from rnnlab.tasks.base import DataSpec, Task, TaskData, in_memory_data, model_device, register_task


class StepHead(nn.Module):
    """A linear layer applied at every step: outputs ``(B, T, D*H)`` -> logits ``(B, T, C)``.

    Args:
        in_features: the recurrent output size ``D*H``.
        num_classes: classes predicted at each step.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, num_classes)

    def forward(self, outputs: Tensor, final: Tensor, lengths: Tensor | None) -> Tensor:
        return self.proj(outputs)  # (B, T, C)


class CopyData(DataConfig):
    """``[data]`` of the copy task.

    Attributes:
        length: the delay ``T`` between a symbol and its recall (at least 1).
        memory_length: symbols to remember ``M`` (10 in the classic task).
        alphabet_size: distinct symbols ``K`` (8 in the classic task).
        train_samples, valid_samples, test_samples: sequences per split.
        seed: the data seed; split ``k`` (train, valid, test) uses ``seed + k``.
    """

    length: int = Field(default=100, ge=1)
    memory_length: int = Field(default=COPY_MEMORY_LENGTH, ge=1)
    alphabet_size: int = Field(default=COPY_ALPHABET_SIZE, ge=2)
    train_samples: int = Field(default=10000, gt=0)
    valid_samples: int = Field(default=1000, gt=0)
    test_samples: int = Field(default=1000, gt=0)
    seed: int = 1234


@register_task("copy")
class CopyTask(Task):
    """Copy memory: token sequences ``(B, T + 2M)`` -> a token per step, cross-entropy loss."""

    Data = CopyData
    unit = "samples"

    def check_config(self) -> None:
        if self.config.train.seq_len is not None:
            raise ConfigError(
                f"train.seq_len={self.config.train.seq_len} is not used by task 'copy': "
                "its sequence length is data.length + 2 * data.memory_length"
            )
        if self.config.model.input_projection is not None:
            raise ConfigError(
                "model.input_projection is for real-valued inputs; task 'copy' reads tokens "
                "(use model.embedding_size)"
            )

    def _split(self, samples: int, offset: int) -> tuple[Tensor, Tensor]:
        data: CopyData = self.data_config
        return copy_memory(
            samples,
            data.length,
            seed=data.seed + offset,
            memory_length=data.memory_length,
            alphabet_size=data.alphabet_size,
        )

    def build_data(self) -> TaskData:
        data: CopyData = self.data_config
        vocab = copy_memory_vocabulary_size(data.alphabet_size)
        return in_memory_data(
            self._split(data.train_samples, 0),
            self._split(data.valid_samples, 1),
            self._split(data.test_samples, 2),
            self.config,
            DataSpec(vocab_size=vocab, num_classes=vocab),
        )

    def build_model(self, spec: DataSpec) -> nn.Module:
        classes = spec.num_classes or 1
        return build_sequence_model(
            self.config.model, None, spec.vocab_size, lambda size: StepHead(size, classes)
        )

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float]]:
        inputs, targets = batch  # (B, S), (B, S) with S = T + 2M
        logits, _ = model(inputs)  # (B, S, C)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        return loss, None, {"count": float(inputs.shape[0])}

    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        data: CopyData = self.data_config
        device = model_device(model)
        memory = data.memory_length
        total_ce = torch.zeros((), dtype=torch.float64)
        correct = 0
        recalled = 0
        steps = 0
        sequences = 0
        for batch in loader:
            inputs, targets = self.to_device(batch, device)
            logits, _ = model(inputs)  # (B, S, C)
            ce = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="sum")
            total_ce += ce.double().cpu()
            hits = logits.argmax(dim=-1) == targets  # (B, S)
            correct += int(hits.sum())
            recalled += int(hits[:, -memory:].sum())
            steps += targets.numel()
            sequences += targets.shape[0]
        cross_entropy = float(total_ce / steps)
        kwargs = {"memory_length": memory, "alphabet_size": data.alphabet_size}
        return {
            "loss": cross_entropy,
            "cross_entropy": cross_entropy,
            "baseline_cross_entropy": copy_memory_baseline_cross_entropy(data.length, **kwargs),
            "accuracy": correct / steps,
            "recall_accuracy": recalled / (sequences * memory),
            "baseline_recall_accuracy": copy_memory_baseline_accuracy(
                data.length, recall_only=True, **kwargs
            ),
        }
