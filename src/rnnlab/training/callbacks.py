"""Callbacks: code the trainer calls at named events, without changing the loop.

Events, in the order they happen::

    on_fit_start(trainer)
      on_epoch_start(trainer, epoch)
        on_step_end(trainer, info)            after each optimizer step (info: StepInfo)
        on_log(trainer, record)               every record written to metrics.jsonl
        on_evaluate(trainer, split, metrics)  after each evaluation
        on_checkpoint(trainer, kind, path)    after last.pt / best.pt is written
      on_epoch_end(trainer, epoch)
    on_fit_end(trainer, status)

Callbacks see the trainer through :class:`~rnnlab.training.protocol.TrainerView` (the few
attributes they read or set), so this module does not import the trainer. A callback stops
training by setting ``trainer.should_stop = True`` and ``trainer.stop_reason``. A callback
with state to keep across a resume (early stopping) returns it from ``state_dict`` (plain
numbers and tensors); the trainer stores it in every checkpoint under the callback's
``name``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rnnlab.config import ExperimentConfig
from rnnlab.training.protocol import StepInfo, TrainerView

__all__ = [
    "Callback",
    "EarlyStopping",
    "PlainLog",
    "ProgressBar",
    "StepInfo",
    "TensorBoard",
    "TrainerView",
    "builtin_callbacks",
    "eval_line",
]


class Callback:
    """Base class: every event is a no-op; override the ones you need."""

    name = "callback"

    def on_fit_start(self, trainer: TrainerView) -> None: ...
    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None: ...
    def on_step_end(self, trainer: TrainerView, info: StepInfo) -> None: ...
    def on_log(self, trainer: TrainerView, record: dict[str, Any]) -> None: ...
    def on_evaluate(self, trainer: TrainerView, split: str, metrics: dict[str, float]) -> None: ...
    def on_checkpoint(self, trainer: TrainerView, kind: str, path: Path) -> None: ...
    def on_epoch_end(self, trainer: TrainerView, epoch: int) -> None: ...
    def on_fit_end(self, trainer: TrainerView, status: str) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class EarlyStopping(Callback):
    """Stop when a validation metric has not improved for ``patience`` evaluations.

    Args:
        metric: the validation metric (a key of the task's ``evaluate`` result).
        mode: ``min`` or ``max``.
        patience: evaluations without an improvement larger than ``min_delta``.
        min_delta: the smallest change that counts as an improvement.
    """

    name = "early_stopping"

    def __init__(self, metric: str, mode: str, patience: int, min_delta: float = 0.0) -> None:
        self.metric = metric
        self.mode = mode
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.bad_evaluations = 0

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_evaluate(self, trainer: TrainerView, split: str, metrics: dict[str, float]) -> None:
        if split != "valid":
            return
        value = trainer.metric(metrics, self.metric, "train.early_stopping.metric")
        if math.isfinite(value) and self.improved(value):
            self.best = value
            self.bad_evaluations = 0
            return
        self.bad_evaluations += 1
        if self.bad_evaluations >= self.patience:
            trainer.should_stop = True
            trainer.stop_reason = (
                f"early stopping: valid {self.metric} has not improved on {self.best:.6g} "
                f"for {self.bad_evaluations} evaluations"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_evaluations": self.bad_evaluations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_evaluations = int(state["bad_evaluations"])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def eval_line(split: str, epoch: int, step: int, metrics: dict[str, Any]) -> str:
    """``epoch 3 step 600 valid: loss 0.0123  mse 0.0123 ...`` for console logs."""
    shown = "  ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
    return f"epoch {epoch} step {step} {split}: {shown}"


class PlainLog(Callback):
    """Quiet mode: one plain line per evaluation and at the end, no progress bar."""

    name = "plain_log"

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)

    def on_evaluate(self, trainer: TrainerView, split: str, metrics: dict[str, float]) -> None:
        epoch = trainer.epoch + 1 if split == "valid" else trainer.epoch
        shown = trainer.console_metrics(metrics)
        self.console.print(eval_line(split, epoch, trainer.step, shown), markup=False)

    def on_fit_end(self, trainer: TrainerView, status: str) -> None:
        self.console.print(f"{status}: {trainer.run_dir}", markup=False)


class ProgressBar(PlainLog):
    """A Rich progress bar over all planned steps (loss, lr, throughput, ETA), plus the
    evaluation lines of :class:`PlainLog` printed above it."""

    name = "progress_bar"

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self.progress: Progress | None = None
        self.bar: TaskID | None = None

    def on_fit_start(self, trainer: TrainerView) -> None:
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.bar = self.progress.add_task(
            "train",
            total=trainer.total_steps if trainer.total_steps < sys.maxsize else None,
            completed=trainer.step,
            epoch=trainer.epoch + 1,
            loss="-",
            lr="-",
            speed="",
        )

    def on_step_end(self, trainer: TrainerView, info: StepInfo) -> None:
        if self.progress is not None and self.bar is not None:
            self.progress.update(
                self.bar,
                completed=info.step,
                epoch=info.epoch + 1,
                loss=f"{info.loss:.4f}",
                lr=f"{info.lr:.3g}",
            )

    def on_log(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        speed_key = f"{trainer.unit}_per_s"
        if record.get("kind") == "train" and speed_key in record and self.progress is not None:
            assert self.bar is not None
            self.progress.update(self.bar, speed=f"{record[speed_key]:.0f} {trainer.unit}/s")

    def on_fit_end(self, trainer: TrainerView, status: str) -> None:
        if self.progress is not None:
            self.progress.stop()
        super().on_fit_end(trainer, status)


class TensorBoard(Callback):
    """Mirror every numeric metrics record to TensorBoard (``<run>/tensorboard``).

    Needs the optional ``tensorboard`` package (``pip install tensorboard``).
    """

    name = "tensorboard"

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # pragma: no cover - depends on the optional package
            from rnnlab.errors import ConfigError

            raise ConfigError(
                "output.tensorboard = true needs the tensorboard package (pip install tensorboard)"
            ) from err
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def on_log(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        prefix = record.get("split") or record.get("kind")
        for key, value in record.items():
            if (
                key not in ("step", "epoch")
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                self.writer.add_scalar(f"{prefix}/{key}", value, record.get("step", 0))

    def on_fit_end(self, trainer: TrainerView, status: str) -> None:
        self.writer.close()


def builtin_callbacks(
    config: ExperimentConfig, *, quiet: bool | None, main: bool, run_dir: Path
) -> list[Callback]:
    """The callbacks a config asks for, in the order they run.

    Early stopping (``train.early_stopping.patience``) on every process; on the main process
    only, the console output (a progress bar, plain lines when ``quiet`` is true, nothing
    when it is ``None``) and TensorBoard (``output.tensorboard``, into ``run_dir``).
    """
    out: list[Callback] = []
    train = config.train
    stopping = train.early_stopping
    if stopping.patience is not None:
        out.append(
            EarlyStopping(
                metric=stopping.metric or train.monitor,
                mode=stopping.mode or train.monitor_mode,
                patience=stopping.patience,
                min_delta=stopping.min_delta,
            )
        )
    if main:
        if quiet is False:
            out.append(ProgressBar())
        elif quiet is True:
            out.append(PlainLog())
        if config.output.tensorboard:
            out.append(TensorBoard(run_dir / "tensorboard"))
    return out
