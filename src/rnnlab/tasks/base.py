"""The task contract, written once: what every task gives the trainer.

A task turns a validated :class:`~rnnlab.config.ExperimentConfig` into data, a model, a loss
and metrics. The trainer (``rnnlab.training``) only talks to tasks through this contract, so
it knows nothing about any task or cell::

    task = TASKS.get(config.task.name)(config)
    data = task.build_data()              # TaskData(train, valid, test, spec)
    model = task.build_model(data.spec)   # an nn.Module
    for each epoch:
        state = task.initial_state()      # None, or a stateful task's starting state
        for batch in data.train.batches(start):
            loss, state, batch_metrics = task.step(model, batch, state)
    metrics = task.evaluate(model, data.valid)   # {"loss": ..., ...}

Registering a new task (one module per task under ``rnnlab/tasks/``, imported in
``rnnlab/tasks/__init__.py``)::

    class CopyData(DataConfig):           # the schema of the [data] section
        length: int = 100

    @register_task("copy")
    class CopyTask(Task):
        Data = CopyData
        ...

Stateful tasks (language modeling with truncated BPTT) return the new hidden state from
``step``, detached from the graph, and the trainer hands it to the next ``step``; the
trainer resets it with ``initial_state()`` at the start of every epoch, and stores it in
checkpoints (tensors only) so that a resumed run continues with the same state.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from rnnlab.config import DataConfig, ExperimentConfig
from rnnlab.data.loaders import EpochLoader, ShuffledBatches
from rnnlab.registry import TASKS


@dataclass
class DataSpec:
    """What the model needs to know about the data.

    Attributes:
        num_features: real-valued input features per step (``None`` for token inputs).
        vocab_size: token vocabulary size (``None`` for real-valued inputs).
        num_classes: classes of a classification task.
        output_size: values predicted per sequence by a regression task.
        extra: anything else a task wants to hand its own ``build_model``.
    """

    num_features: int | None = None
    vocab_size: int | None = None
    num_classes: int | None = None
    output_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskData:
    """The loaders of a task and its :class:`DataSpec`.

    ``train`` must implement :class:`~rnnlab.data.loaders.EpochLoader` (order fixed by
    ``(seed, epoch)``, resumable mid-epoch, shardable under DDP); ``valid`` and ``test`` only
    need to be iterable and are read whole by every process.
    """

    train: EpochLoader
    valid: Iterable[Any]
    test: Iterable[Any] | None
    spec: DataSpec


def in_memory_data(
    train: tuple[Tensor, ...],
    valid: tuple[Tensor, ...],
    test: tuple[Tensor, ...] | None,
    config: ExperimentConfig,
    spec: DataSpec,
) -> TaskData:
    """:class:`TaskData` for splits held as tensors (generated tasks, small data sets).

    Training batches are reshuffled every epoch from ``train.seed``; valid and test batches
    keep their order and their last, smaller batch.
    """
    batch = config.train.batch_size
    return TaskData(
        train=ShuffledBatches(train, batch, shuffle=True, seed=config.train.seed),
        valid=ShuffledBatches(valid, batch, shuffle=False, drop_last=False),
        test=None if test is None else ShuffledBatches(test, batch, shuffle=False, drop_last=False),
        spec=spec,
    )


class Task(ABC):
    """Base class of every task; subclasses register with :func:`register_task`.

    Class attributes:
        name: the registered name (set by :func:`register_task`).
        Data: the pydantic model of the ``[data]`` section (a :class:`DataConfig` subclass).
        unit: what throughput counts, ``"samples"`` or ``"tokens"``.

    Args:
        config: the validated experiment config.
    """

    name: ClassVar[str] = ""
    Data: ClassVar[type[DataConfig]] = DataConfig
    unit: ClassVar[str] = "samples"

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.check_config()

    @property
    def data_config(self) -> Any:
        """The ``[data]`` section, an instance of this task's :attr:`Data`."""
        return self.config.data

    def check_config(self) -> None:  # noqa: B027  (optional hook)
        """Reject settings this task cannot honor (raise :class:`~rnnlab.errors.ConfigError`)."""

    @abstractmethod
    def build_data(self) -> TaskData:
        """Build (or load) the train/valid/test data and describe it."""

    @abstractmethod
    def build_model(self, spec: DataSpec) -> nn.Module:
        """Build the model for ``spec`` from ``self.config.model``.

        Seeding is the trainer's job: build weights with the global torch RNG.
        """

    def prepare_run_dir(self, run_dir: str | os.PathLike[str], resume: bool = False) -> None:
        """Write what inference needs beside the checkpoints (vocabulary, feature settings).

        The trainer calls it on the main process right after :meth:`build_data`; with
        ``resume`` the task checks that what it built matches what the run saved. The
        default writes nothing.
        """
        del run_dir, resume  # nothing to write for a task whose config says it all

    def initial_state(self) -> Any:
        """The state handed to the first ``step`` of every epoch (``None`` by default)."""
        return None

    @abstractmethod
    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, Mapping[str, float | Tensor]]:
        """One training step's forward pass.

        Args:
            model: the model to call (wrapped in DDP under ``torchrun``: call it, do not
                reach into it).
            batch: one batch from ``train.batches()``, already on the model's device.
            state: what the previous ``step`` of this epoch returned, or ``initial_state()``.

        Returns:
            ``(loss, state, batch_metrics)``: the scalar loss to minimize (the mean over the
            batch), the state for the next step (detached; ``None`` for stateless tasks),
            and values to average over the logging interval: floats or 0-d tensors (the
            trainer reads the tensors together with the loss in one device synchronization
            per step, so a task need not call ``float()`` on the device). ``batch_metrics
            ["count"]`` is a float: the number of samples or tokens the loss averages over
            (weights the averages and gives the throughput).
        """

    @abstractmethod
    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        """Metrics over a whole split; the trainer calls it in eval mode under ``no_grad``.

        Returns:
            A dict with at least ``"loss"`` (on the training loss's scale) and any metrics
            of the task. Batches come straight from ``loader``: move them with
            :meth:`to_device` (to :func:`model_device`).
        """

    def console_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """The metrics worth a console line (all of them unless a task has many); the run's
        ``metrics.jsonl`` always keeps every metric."""
        return metrics

    def to_device(self, batch: Any, device: torch.device) -> Any:
        """Move every tensor in a batch (tuples, lists, dicts of tensors) to ``device``."""
        return move_to(batch, device)


def move_to(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor inside moved to ``device``."""
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, tuple | list):
        return type(value)(move_to(v, device) for v in value)
    if isinstance(value, Mapping):
        return {k: move_to(v, device) for k, v in value.items()}
    return value


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (CPU for a model without parameters)."""
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


T = TypeVar("T", bound=type[Task])


def register_task(name: str) -> Any:
    """Class decorator: register a :class:`Task` subclass under ``name``.

    Example:
        >>> @register_task("example-noop")
        ... class Noop(Task):
        ...     pass
        >>> TASKS.get("example-noop").name
        'example-noop'
    """

    def add(cls: T) -> T:
        cls.name = name
        TASKS.add(name, cls)
        return cls

    return add
