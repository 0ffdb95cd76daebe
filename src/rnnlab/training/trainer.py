"""The training loop: task-agnostic, resumable bit for bit, interruptible, data-parallel.

The trainer talks to a task only through the contract of ``rnnlab.tasks.base.Task``
(``build_data``, ``build_model``, ``initial_state``, ``step``, ``evaluate``). It owns the
optimizer and schedule, gradient clipping, mixed precision, evaluation, checkpoints,
callbacks, seeding, signals and DDP.

One optimizer step, and what happens after it (the order matters for exact resume)::

    lr <- lr0 * schedule.factor(step, epoch)
    loss, state, m = task.step(model, batch, state)      (autocast for bf16/fp16)
    non-finite loss? -> stop (or skip the batch with train.skip_nonfinite)
    backward; pre-clip gradient norm; clip; optimizer step; step += 1
    on_step_end; train record every log_every_steps
    evaluate every eval_every_steps, and at the end of the epoch
    write last.pt every checkpoint_every steps, at the end of each epoch and on stop

A checkpoint is written only once everything of its step is done, so resuming from it
replays exactly the steps after it: the data order is a function of (seed, epoch), the
batches already done in the epoch are skipped without being built, and every RNG state,
the running means, the schedule and the callbacks' states are restored.
"""

from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.config import ExperimentConfig, save
from rnnlab.errors import (
    ConfigError,
    DataError,
    NonFiniteLossError,
    RunDirError,
    TrainingInterrupted,
)
from rnnlab.training import distributed
from rnnlab.training.callbacks import (
    Callback,
    EarlyStopping,
    PlainLog,
    ProgressBar,
    StepInfo,
    TensorBoard,
)
from rnnlab.training.checkpoint import (
    capture_rng,
    load_checkpoint,
    load_model_state,
    restore_rng,
    save_checkpoint,
)
from rnnlab.training.metrics import Meter, MetricsFile
from rnnlab.training.schedules import LRSchedule, build_schedule

if TYPE_CHECKING:
    from rnnlab.tasks.base import Task, TaskData

SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        run_dir: the run directory.
        status: ``completed``, ``max_steps``, ``early_stopped``.
        step, epoch: optimizer steps done and epochs completed.
        best: the best value of ``train.monitor`` on the validation split.
        valid: the last validation metrics.
        test: test metrics of ``best.pt`` (empty when the task has no test split).
    """

    run_dir: Path
    status: str
    step: int
    epoch: int
    best: float | None
    valid: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA, then MPS, then CPU; an explicit device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "train.device='cuda' but no CUDA device is available (allowed here: auto, cpu)"
            )
        return torch.device("cuda", local_rank)
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device='mps' but MPS is not available (allowed here: auto, cpu)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Ask torch for deterministic algorithms inside the block (restored afterwards)."""
    if not enabled:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = torch.are_deterministic_algorithms_enabled()
    previous_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous_cudnn


def build_optimizer(
    params: Sequence[nn.Parameter], config: ExperimentConfig
) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW from ``config.train``."""
    train = config.train
    if train.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=train.lr,
            momentum=train.momentum,
            nesterov=train.nesterov,
            weight_decay=train.weight_decay,
        )
    cls = torch.optim.Adam if train.optimizer == "adam" else torch.optim.AdamW
    return cls(
        params, lr=train.lr, betas=train.betas, eps=train.eps, weight_decay=train.weight_decay
    )


class Trainer:
    """Fit a model of a task, writing a run directory (rank 0 only under DDP).

    Args:
        task: an object following the task contract (``rnnlab.tasks.base.Task``).
        config: the validated experiment config (the task's own).
        run_dir: the run directory (created if needed).
        resume: continue from ``run_dir/checkpoints/last.pt``.
        callbacks: extra callbacks, after the built-in ones.
        quiet: plain evaluation lines instead of a progress bar; ``None`` prints nothing.

    Example:
        >>> from rnnlab import config as cfg
        >>> from rnnlab.tasks import TASKS
        >>> c = cfg.load("adding", ["data.train_samples=64", "data.length=5", "train.epochs=1"])
        >>> trainer = Trainer(TASKS.get("adding")(c), c, run_dir=None, quiet=None)  # doctest: +SKIP
    """

    def __init__(
        self,
        task: Task,
        config: ExperimentConfig,
        run_dir: str | os.PathLike[str],
        *,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
        quiet: bool | None = False,
    ) -> None:
        self.task = task
        self.config = config
        self.train_cfg = config.train
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.unit = task.unit
        self.extra_callbacks = list(callbacks)
        self.quiet = quiet
        # Position: optimizer steps done, 0-based epoch, batches done in that epoch.
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.should_stop = False
        self.stop_reason = ""
        self.best: float | None = None
        self.last_valid: dict[str, float] = {}
        self.last_good_checkpoint: Path | None = None
        self._signal: int | None = None
        self._stop_now = False
        self._resumed_state: Any = None

    # ------------------------------------------------------------------------------ paths

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def last_path(self) -> Path:
        return self.checkpoint_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.checkpoint_dir / "best.pt"

    # ------------------------------------------------------------------------------ setup

    def _setup(self) -> None:
        train = self.train_cfg
        wanted = resolve_device(train.device, distributed.from_env().local_rank)
        self.dist, self._owns_group = distributed.setup(wanted.type)
        self.device = resolve_device(train.device, self.dist.local_rank)
        if train.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError(
                f"train.precision='fp16' needs a CUDA device (device is {self.device.type}); "
                "use fp32 or bf16"
            )
        self.is_main = self.dist.is_main
        if self.is_main:
            self._check_run_dir()
        distributed.barrier(self.dist)

        seed_everything(train.seed)
        self.data: TaskData = self.task.build_data()
        if self.is_main:
            self.task.prepare_run_dir(self.run_dir, resume=self.resume)
        if len(self.data.train) == 0:
            raise DataError(
                f"the training split has no full batch of train.batch_size={train.batch_size}; "
                "lower the batch size or use more training data"
            )
        self.data.train.shard(self.dist.rank, self.dist.world_size)
        try:
            self.model = self.task.build_model(self.data.spec).to(self.device)
        except ValueError as err:  # a layer rejected the model settings
            raise ConfigError(f"model: {err}") from None
        self.train_model = distributed.wrap(self.model, self.dist, self.device)
        self.optimizer = build_optimizer(list(self.model.parameters()), self.config)
        self.steps_per_epoch = len(self.data.train)
        planned = [train.max_steps] if train.max_steps else []
        if train.epochs:
            planned.append(train.epochs * self.steps_per_epoch)
        self.total_steps = min(planned)
        self.schedule: LRSchedule = build_schedule(train, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda") if train.precision == "fp16" else None
        self.interval = Meter()
        self.epoch_meter = Meter()
        self.callbacks = self._build_callbacks()
        self.metrics_file = MetricsFile(self.run_dir / "metrics.jsonl")
        if self.resume:
            self._load_last()
        elif self.is_main:
            self.metrics_file.path.unlink(missing_ok=True)

    def _check_run_dir(self) -> None:
        if self.resume:
            if not self.last_path.is_file():
                raise RunDirError(f"cannot resume {self.run_dir}: {self.last_path} does not exist")
        elif self.last_path.exists() or (self.run_dir / "metrics.jsonl").exists():
            raise RunDirError(
                f"run directory {self.run_dir} already holds a run; resume it with "
                f"'rnnlab train --resume {self.run_dir}' or choose another --run-dir"
            )

    def _build_callbacks(self) -> list[Callback]:
        out: list[Callback] = []
        stopping = self.train_cfg.early_stopping
        if stopping.patience is not None:
            out.append(
                EarlyStopping(
                    metric=stopping.metric or self.train_cfg.monitor,
                    mode=stopping.mode or self.train_cfg.monitor_mode,
                    patience=stopping.patience,
                    min_delta=stopping.min_delta,
                )
            )
        if self.is_main:
            if self.quiet is False:
                out.append(ProgressBar())
            elif self.quiet is True:
                out.append(PlainLog())
            if self.config.output.tensorboard:
                out.append(TensorBoard(self.run_dir / "tensorboard"))
        return out + self.extra_callbacks

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    # ---------------------------------------------------------------------- checkpoints

    def checkpoint_payload(self, state: Any) -> dict[str, Any]:
        """Everything needed to continue the run from here (see ``rnnlab.training.checkpoint``)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "schedule": self.schedule.state_dict(),
            "callbacks": {c.name: c.state_dict() for c in self.callbacks},
            "meters": {
                "interval": self.interval.state_dict(),
                "epoch": self.epoch_meter.state_dict(),
            },
            "step": self.step,
            "epoch": self.epoch,
            "batch": self.batch_in_epoch,
            "best": self.best,
            "task_state": _tensors_only(state),
            "rng": capture_rng(),
            "config": self.config.to_dict(),
            "metrics": dict(self.last_valid),
            "world_size": self.dist.world_size,
        }

    def save_checkpoint(self, kind: str, state: Any = None) -> None:
        """Write ``last.pt`` or ``best.pt`` atomically (rank 0), then emit ``on_checkpoint``."""
        if not self.is_main:
            return
        path = self.last_path if kind == "last" else self.best_path
        save_checkpoint({"kind": kind, **self.checkpoint_payload(state)}, path)
        if kind == "last":
            self.last_good_checkpoint = path
        self._emit("on_checkpoint", kind, path)

    def _load_last(self) -> None:
        payload = load_checkpoint(self.last_path)
        load_model_state(self.model, payload["model"], self.last_path)
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scaler is not None and payload["scaler"] is not None:
            self.scaler.load_state_dict(payload["scaler"])
        self.schedule.load_state_dict(payload["schedule"])
        states = payload["callbacks"]
        for callback in self.callbacks:
            if callback.name in states:
                callback.load_state_dict(states[callback.name])
        self.interval.load_state_dict(payload["meters"]["interval"])
        self.epoch_meter.load_state_dict(payload["meters"]["epoch"])
        self.step, self.epoch = int(payload["step"]), int(payload["epoch"])
        self.batch_in_epoch = int(payload["batch"])
        self.best = payload["best"]
        self.last_valid = dict(payload["metrics"])
        self._resumed_state = payload["task_state"]
        restore_rng(payload["rng"])
        self.last_good_checkpoint = self.last_path
        if self.is_main:
            self.metrics_file.truncate_after(self.step)

    # -------------------------------------------------------------------------- records

    def log(self, record: dict[str, Any]) -> None:
        """Write a record to ``metrics.jsonl`` (rank 0) and emit ``on_log``."""
        if self.is_main:
            self.metrics_file.write(record)
        self._emit("on_log", record)

    def metric(self, metrics: dict[str, float], name: str, setting: str) -> float:
        """``metrics[name]``, or a clear error naming the setting that asked for it."""
        if name not in metrics:
            raise ConfigError(
                f"{setting}={name!r} is not a metric of task {self.task.name!r} "
                f"(its metrics: {', '.join(sorted(metrics))})"
            )
        return float(metrics[name])

    # ------------------------------------------------------------------------------- fit

    def fit(self) -> FitResult:
        """Train until ``epochs``/``max_steps``, early stopping, a signal or a failure.

        Raises:
            NonFiniteLossError: a NaN/inf loss (unless ``train.skip_nonfinite``).
            TrainingInterrupted: SIGINT/SIGTERM; ``last.pt`` was written first.
            ConfigError, DataError, CheckpointError, RunDirError: bad input.
        """
        threads = torch.get_num_threads()
        if self.train_cfg.num_threads is not None:
            torch.set_num_threads(self.train_cfg.num_threads)
        with deterministic_mode(self.train_cfg.deterministic):
            try:
                self._setup()
                return self._fit()
            finally:
                torch.set_num_threads(threads)
                distributed.teardown(getattr(self, "_owns_group", False))

    def _fit(self) -> FitResult:
        if self.step >= self.total_steps:
            raise RunDirError(
                f"run {self.run_dir} is already complete at step {self.step}; raise "
                "train.epochs or train.max_steps (--set) to continue it"
            )
        if self.is_main:
            save(self.config, self.run_dir / "config.toml")
        self._emit("on_fit_start")
        with self._signals():
            self._clock = time.perf_counter()
            self._interval_start = self._clock
            while self.step < self.total_steps and not self.should_stop:
                self._run_epoch()
        train = self.train_cfg
        if self.should_stop:
            status = "early_stopped"
        elif (
            train.max_steps
            and self.step >= train.max_steps
            and (train.epochs is None or self.step < train.epochs * self.steps_per_epoch)
        ):
            status = "max_steps"
        else:
            status = "completed"
        distributed.barrier(self.dist)
        test = self._final_test()
        self.log(
            {
                "kind": "end",
                "status": status,
                "step": self.step,
                "epoch": self.epoch,
                "best": self.best,
                "reason": self.stop_reason,
            }
        )
        self._emit("on_fit_end", status)
        return FitResult(
            self.run_dir, status, self.step, self.epoch, self.best, self.last_valid, test
        )

    def _run_epoch(self) -> None:
        epoch = self.epoch
        loader = self.data.train
        loader.set_epoch(epoch)
        start = self.batch_in_epoch
        state = self.task.initial_state()
        resumed = getattr(self, "_resumed_state", None)
        if start > 0 and resumed is not None:
            state = self.task.to_device(
                tuple(resumed) if isinstance(resumed, list) else resumed, self.device
            )
        self._resumed_state = None
        if start == 0:
            self.epoch_meter.reset()
        self._epoch_clock = time.perf_counter()
        self._emit("on_epoch_start", epoch)
        self.train_model.train()
        for index, batch in enumerate(loader.batches(start), start=start):
            state = self._train_step(batch, state, epoch, index)
            self.batch_in_epoch = index + 1
            end_of_epoch = self.batch_in_epoch == self.steps_per_epoch
            last_step = self.step >= self.total_steps
            every = self.train_cfg.eval_every_steps
            evaluated = False
            if every and self.step % every == 0:
                self._evaluate_valid()
                evaluated = True
            if (end_of_epoch or last_step) and not evaluated:
                self._evaluate_valid()
            if end_of_epoch:
                self._end_epoch(epoch)
            stop = self.should_stop or last_step or self._stop_now
            if self.step % self.train_cfg.checkpoint_every == 0 or end_of_epoch or stop:
                self.save_checkpoint("last", state)
            if self._stop_now:
                self._interrupt()
            if stop or end_of_epoch:
                return

    def _end_epoch(self, epoch: int) -> None:
        means = self.epoch_meter.means()
        record = {
            "kind": "epoch",
            "step": self.step,
            "epoch": epoch + 1,
            "train_loss": means.get("loss", float("nan")),
            "seconds": time.perf_counter() - self._epoch_clock,
        }
        self.log(record)
        self.epoch = epoch + 1
        self.batch_in_epoch = 0
        self._emit("on_epoch_end", epoch)

    def _lr(self, epoch: int) -> float:
        return self.train_cfg.lr * self.schedule.factor(self.step, epoch)

    def _autocast(self) -> Any:
        precision = self.train_cfg.precision
        if precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _train_step(self, batch: Any, state: Any, epoch: int, index: int) -> Any:
        batch = self.task.to_device(batch, self.device)
        lr = self._current_lr = self._lr(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            loss, new_state, batch_metrics = self.task.step(self.train_model, batch, state)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        norm = self._clip_by_norm()
        # The step's one host-device synchronization: loss, gradient norm, tensor metrics.
        tensor_metrics = {k: v for k, v in batch_metrics.items() if isinstance(v, Tensor)}
        scalars = [loss.detach(), norm, *(v.detach() for v in tensor_metrics.values())]
        value, grad_norm, *metric_values = torch.stack(
            [t.float().reshape(()).to(norm.device) for t in scalars]
        ).tolist()
        batch_metrics = {**batch_metrics, **dict(zip(tensor_metrics, metric_values, strict=True))}
        nonfinite, signalled = distributed.any_true(
            [not math.isfinite(value), self._signal is not None], self.dist, self.device
        )
        # Decided on every process alike (a signal may reach only some of them).
        self._stop_now = signalled
        count = float(batch_metrics.get("count", 1.0))
        if nonfinite:
            return self._nonfinite(value, epoch, index, count)
        clipped = self._clip_by_value(grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.step += 1
        values = {"loss": value}
        values.update({k: float(v) for k, v in batch_metrics.items() if k != "count"})
        for meter in (self.interval, self.epoch_meter):
            meter.update(values, count)
            meter.steps += 1
            meter.clipped += int(clipped)
            meter.grad_norm_sum += grad_norm
        info = StepInfo(self.step, epoch, index, value, lr, grad_norm, clipped, False, count)
        self._emit("on_step_end", info)
        self._maybe_log_interval(epoch)
        return new_state

    def _clip_by_norm(self) -> Tensor:
        """Clip by total norm when configured; the pre-clip total norm, as a tensor (no sync)."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.train_cfg.grad_clip_norm
        if not params:
            return torch.zeros((), device=self.device)
        return torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm else float("inf"))

    def _clip_by_value(self, grad_norm: float) -> bool:
        """Clip by value when configured; whether clipping (by norm or value) changed anything."""
        max_norm = self.train_cfg.grad_clip_norm
        if max_norm is not None:
            return grad_norm > max_norm
        clip_value = self.train_cfg.grad_clip_value
        if clip_value is None:
            return False
        params = [p for p in self.model.parameters() if p.grad is not None]
        clipped = any(bool((p.grad.abs() > clip_value).any()) for p in params if p.grad is not None)
        torch.nn.utils.clip_grad_value_(params, clip_value)
        return clipped

    def _nonfinite(self, value: float, epoch: int, index: int, count: float) -> Any:
        where = f"step {self.step + 1} (epoch {epoch + 1}, batch {index + 1})"
        if not self.train_cfg.skip_nonfinite:
            last = (
                f"the last good checkpoint is {self.last_good_checkpoint} (left intact)"
                if self.last_good_checkpoint is not None
                else "no checkpoint was written yet"
            )
            self.log(
                {
                    "kind": "end",
                    "status": "nonfinite",
                    "step": self.step,
                    "epoch": epoch + 1,
                    "reason": f"loss {value} at {where}",
                }
            )
            raise NonFiniteLossError(
                f"loss is {value} at {where}; {last}. Lower train.lr, set train.grad_clip_norm, "
                "or set train.skip_nonfinite = true to skip such batches"
            )
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:  # unscale_ ran for this step: close it
            self.scaler.update()
        self.step += 1
        for meter in (self.interval, self.epoch_meter):
            meter.steps += 1
            meter.skipped += 1
        info = StepInfo(
            self.step, epoch, index, value, self._lr(epoch), float("nan"), False, True, count
        )
        self._emit("on_step_end", info)
        self._maybe_log_interval(epoch)
        return self.task.initial_state()

    def _maybe_log_interval(self, epoch: int) -> None:
        if self.step % self.train_cfg.log_every_steps:
            return
        now = time.perf_counter()
        meter = self.interval
        seconds = max(now - self._interval_start, 1e-9)
        record: dict[str, Any] = {"kind": "train", "step": self.step, "epoch": epoch + 1}
        record.update(meter.means())
        stepped = meter.steps - meter.skipped
        record.update(
            {
                "lr": self._current_lr,  # the rate of the interval's last step
                "grad_norm": meter.grad_norm_sum / stepped if stepped else float("nan"),
                "clipped_fraction": meter.clipped / stepped if stepped else 0.0,
                "skipped": meter.skipped,
                f"{self.unit}_per_s": meter.count * self.dist.world_size / seconds,
                "elapsed_s": now - self._clock,
            }
        )
        self.log(record)
        meter.reset()
        self._interval_start = now

    # ------------------------------------------------------------------------ evaluation

    def evaluate(self, split: str) -> dict[str, float]:
        """Evaluate the (unwrapped) model on ``valid`` or ``test``, in eval mode, no grad."""
        loader = self.data.valid if split == "valid" else self.data.test
        if loader is None:
            return {}
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                return {k: float(v) for k, v in self.task.evaluate(self.model, loader).items()}
        finally:
            self.model.train(was_training)

    def _evaluate_valid(self) -> None:
        metrics = self.evaluate("valid")
        self.last_valid = metrics
        self.log(
            {
                "kind": "eval",
                "split": "valid",
                "step": self.step,
                "epoch": self.epoch + 1,
                **metrics,
            }
        )
        value = self.metric(metrics, self.train_cfg.monitor, "train.monitor")
        better = self.best is None or (
            value < self.best if self.train_cfg.monitor_mode == "min" else value > self.best
        )
        if math.isfinite(value) and better:
            self.best = value
            self.save_checkpoint("best")
        self.schedule.on_evaluate(metrics)
        self._emit("on_evaluate", "valid", metrics)

    def _final_test(self) -> dict[str, float]:
        if self.data.test is None:
            return {}
        checkpoint = "last"
        if self.best_path.is_file():
            payload = load_checkpoint(self.best_path)
            load_model_state(self.model, payload["model"], self.best_path)
            checkpoint = "best"
        metrics = self.evaluate("test")
        self.log(
            {
                "kind": "eval",
                "split": "test",
                "step": self.step,
                "epoch": self.epoch,
                "checkpoint": checkpoint,
                **metrics,
            }
        )
        self._emit("on_evaluate", "test", metrics)
        return metrics

    # --------------------------------------------------------------------------- signals

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM: finish the current step, write last.pt, raise TrainingInterrupted.
        A second signal stops at once (KeyboardInterrupt)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            if self._signal is not None:
                raise KeyboardInterrupt
            self._signal = signum

        previous: dict[int, Callable[..., Any] | int | None] = {}
        for sig in SIGNAL_NAMES:
            previous[int(sig)] = signal.signal(sig, handler)
        try:
            yield
        finally:
            for number, old in previous.items():
                signal.signal(number, old)

    def _interrupt(self) -> None:
        signum = int(self._signal if self._signal is not None else signal.SIGTERM)
        name = SIGNAL_NAMES.get(signal.Signals(signum), str(signum))
        self.log(
            {
                "kind": "end",
                "status": "interrupted",
                "step": self.step,
                "epoch": self.epoch + 1,
                "reason": name,
            }
        )
        self._emit("on_fit_end", "interrupted")
        raise TrainingInterrupted(
            f"{name} received: stopped after step {self.step} and saved {self.last_path}; "
            f"resume with: rnnlab train --resume {self.run_dir}",
            signum=int(signum),
            run_dir=str(self.run_dir),
        )


def _tensors_only(state: Any) -> Any:
    """A task's carried state if it is made of tensors (else ``None``), detached, on CPU."""
    if isinstance(state, Tensor):
        return state.detach().cpu()
    if isinstance(state, tuple | list) and state and all(isinstance(s, Tensor) for s in state):
        return [s.detach().cpu() for s in state]
    return None
