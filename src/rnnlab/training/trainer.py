"""The training loop: task-agnostic, resumable bit for bit, interruptible, data-parallel.

The trainer talks to a task only through the contract of ``rnnlab.tasks.base.Task``
(``build_data``, ``build_model``, ``initial_state``, ``step``, ``evaluate``). It owns the
loop: epochs, evaluation, checkpoints, callbacks and the decision to stop. Its parts live
beside it: the optimizer step (:mod:`~rnnlab.training.optimizer_step`), what a checkpoint keeps
(:mod:`~rnnlab.training.run_state`), the run directory (:mod:`~rnnlab.training.run_dir`),
signals (:mod:`~rnnlab.training.signals`), devices and precision
(:mod:`~rnnlab.training.devices`), seeding (:mod:`~rnnlab.training.seeding`), DDP
(:mod:`~rnnlab.training.distributed`) and the time budget (:mod:`~rnnlab.training.budget`).

One optimizer step, and what happens after it (the order matters for exact resume)::

    lr <- lr0 * schedule.factor(step, epoch)
    loss, state, m = task.step(model, batch, state)      (autocast for bf16/fp16)
    non-finite loss? -> stop (or skip the batch with train.skip_nonfinite); out of time?
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

import contextlib
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rnnlab.config import ExperimentConfig, save
from rnnlab.errors import (
    ConfigError,
    DataError,
    NonFiniteLossError,
    TrainingInterrupted,
)
from rnnlab.training import distributed, faults
from rnnlab.training.averaging import averaged, observe_validation
from rnnlab.training.budget import TimeBudget
from rnnlab.training.callbacks import Callback, builtin_callbacks
from rnnlab.training.checkpoint import capture_rng, check_resumable, restore_rng, save_checkpoint
from rnnlab.training.curves import time_to_quality
from rnnlab.training.devices import check_precision, resolve_device
from rnnlab.training.evaluation import evaluate_model, improves
from rnnlab.training.lock import RunLock, claim
from rnnlab.training.metrics_log import Meter, MetricsFile
from rnnlab.training.optimizer_step import OptimizerStep, StepOutcome
from rnnlab.training.optimizers import build_optimizer
from rnnlab.training.outcome import (
    FitResult,
    check_can_continue,
    end_status,
    interrupted_message,
    nonfinite_message,
    planned_steps,
)
from rnnlab.training.protocol import StepInfo
from rnnlab.training.run_dir import RunDir, Which
from rnnlab.training.run_state import RunState, tensors_only
from rnnlab.training.schedules import build_schedule
from rnnlab.training.seeding import deterministic_mode, seed_everything
from rnnlab.training.signals import StopSignals

if TYPE_CHECKING:
    from rnnlab.tasks.base import Task, TaskData


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
        self.run = RunDir(run_dir)
        self.run_dir = self.run.path
        self.resume = resume
        self.unit = task.unit
        self.extra_callbacks = list(callbacks)
        self.quiet = quiet
        # Position: optimizer steps done, 0-based epoch, batches done in that epoch.
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.total_steps = 0
        self.should_stop = False
        self.stop_reason = ""
        self.best: float | None = None
        self.last_valid: dict[str, float] = {}
        self.last_good_checkpoint: Path | None = None
        self.signals = StopSignals(self.run.checkpoint_path("last"))
        self._lock: RunLock | None = None
        self._stop_now = self._out_of_time = False
        self._resumed_state: Any = None
        self.budget = TimeBudget(config.train.time_budget_seconds)

    # ------------------------------------------------------------------------------ setup

    def _setup(self) -> None:
        train = self.train_cfg
        wanted = resolve_device(train.device, distributed.from_env().local_rank)
        self.dist, self._owns_group = distributed.setup(wanted.type)
        self.device = resolve_device(train.device, self.dist.local_rank)
        check_precision(train.precision, self.device)
        self.is_main = self.dist.is_main
        if self.is_main:  # checks, run.lock, stale temporaries removed (lock.claim)
            self._lock = claim(self.run, self.resume, announce=self.quiet is not None)
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
        self.total_steps = planned_steps(train, self.steps_per_epoch)
        self.schedule = build_schedule(train, self.total_steps, self.budget.fraction)
        self.scaler = torch.amp.GradScaler("cuda") if train.precision == "fp16" else None
        self.stepper = OptimizerStep(
            self.task, self.train_model, self.model, self.optimizer, self.scaler, train, self.device
        )
        self.interval = Meter()
        self.epoch_meter = Meter()
        self.callbacks = [
            *builtin_callbacks(
                self.config, quiet=self.quiet, main=self.is_main, run_dir=self.run_dir
            ),
            *time_to_quality(self.config, main=self.is_main),
            *self.extra_callbacks,
        ]
        self.run_state = RunState(
            self.model, self.optimizer, self.scaler, self.schedule, self.callbacks, self.interval,
            self.epoch_meter,
        )  # fmt: skip
        self.metrics_file = MetricsFile(self.run.metrics_path)
        if self.resume:
            self._load_last()
        elif self.is_main:
            self.metrics_file.path.unlink(missing_ok=True)

    def _writing(self, target: Path | None) -> Any:
        """A full disk or unwritable directory while writing ``target``: one-line error."""
        return faults.writing(self.run_dir, target, lambda: self.last_good_checkpoint)

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    # ---------------------------------------------------------------------- checkpoints

    def checkpoint_payload(self, state: Any) -> dict[str, Any]:
        """Everything needed to continue the run from here (see ``rnnlab.training.checkpoint``)."""
        return {
            **self.run_state.state_dicts(),
            "step": self.step,
            "epoch": self.epoch,
            "batch": self.batch_in_epoch,
            "best": self.best,
            "task_state": tensors_only(state),
            "rng": capture_rng(),
            "config": self.config.to_dict(),
            "metrics": dict(self.last_valid),
            "world_size": self.dist.world_size,
            "budget": self.budget.state_dict(),
        }

    def save_checkpoint(self, kind: Which, state: Any = None) -> None:
        """Write ``last.pt`` or ``best.pt`` atomically (rank 0), then emit ``on_checkpoint``."""
        if not self.is_main:
            return
        path = self.run.checkpoint_path(kind)
        with self._writing(path), self.budget.measuring("checkpoint"):
            save_checkpoint({"kind": kind, **self.checkpoint_payload(state)}, path)
        if kind == "last":
            self.last_good_checkpoint = path
        self._emit("on_checkpoint", kind, path)

    def _load_last(self) -> None:
        path, payload = self.run.checkpoint("last")
        check_resumable(payload, path)
        self.run_state.load(payload, path)
        self.step, self.epoch = int(payload["step"]), int(payload["epoch"])
        self.batch_in_epoch = int(payload["batch"])
        self.best = payload["best"]
        self.last_valid = dict(payload["metrics"])
        self._resumed_state = payload["task_state"]
        self.budget.load_state_dict(payload.get("budget"))
        restore_rng(payload["rng"])
        self.last_good_checkpoint = path
        if self.is_main:
            with self._writing(self.metrics_file.path):
                self.metrics_file.truncate_after(self.step)

    # -------------------------------------------------------------------------- records

    def log(self, record: dict[str, Any]) -> None:
        """Write a record to ``metrics.jsonl`` (rank 0) and emit ``on_log``."""
        if self.is_main:
            with self._writing(self.metrics_file.path):
                self.metrics_file.write(record)
        self._emit("on_log", record)

    def _log_end(self, status: str, epoch: int, reason: str, **extra: Any) -> None:
        record = {"kind": "end", "status": status, "step": self.step, "epoch": epoch}
        self.log({**record, **extra, "reason": reason})

    def _log_eval(self, split: str, epoch: int, metrics: dict[str, float], **extra: Any) -> None:
        record = {"kind": "eval", "split": split, "step": self.step, "epoch": epoch}
        self.log({**record, **extra, **metrics})

    def metric(self, metrics: dict[str, float], name: str, setting: str) -> float:
        """``metrics[name]``, or a clear error naming the setting that asked for it."""
        if name not in metrics:
            raise ConfigError(
                f"{setting}={name!r} is not a metric of task {self.task.name!r} "
                f"(its metrics: {', '.join(sorted(metrics))})"
            )
        return float(metrics[name])

    def console_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """The task's short selection of ``metrics`` for console lines."""
        return self.task.console_metrics(metrics)

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
        self.budget.start()
        with deterministic_mode(self.train_cfg.deterministic):
            try:
                with self._writing(None):  # writes not named below (a task's run files)
                    self._setup()
                    return self._fit()
            finally:
                torch.set_num_threads(threads)
                distributed.teardown(getattr(self, "_owns_group", False))
                if self._lock is not None:
                    self._lock.release()

    def _fit(self) -> FitResult:
        check_can_continue(self.run_dir, self.step, self.total_steps, self.budget)
        if self.is_main:
            with self._writing(self.run.config_path):
                save(self.config, self.run.config_path)
        self._emit("on_fit_start")
        with self.signals.installed():
            self._clock = time.perf_counter()
            self._interval_start = self._clock
            while self.step < self.total_steps and not (self.should_stop or self._out_of_time):
                self._run_epoch()
        stops = (self.should_stop, self._out_of_time)
        status = end_status(self.train_cfg, self.step, self.steps_per_epoch, *stops)
        distributed.barrier(self.dist)
        test, tested_with = self._final_test()
        self._log_end(status, self.epoch, self.stop_reason, best=self.best, **self.budget.summary())
        self._emit("on_fit_end", status)
        result = (self.run_dir, status, self.step, self.epoch, self.best, self.last_valid, test)
        shown = self.task.console_metrics(test)
        return FitResult(*result, test_checkpoint=tested_with, test_shown=shown)

    def _run_epoch(self) -> None:
        epoch = self.epoch
        loader = self.data.train
        loader.set_epoch(epoch)
        start = self.batch_in_epoch
        state = self.task.initial_state()
        resumed = self._resumed_state
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
            last_step = self.step >= self.total_steps or self._out_of_time
            every = self.train_cfg.eval_every_steps
            evaluated = False
            if (every and self.step % every == 0) or self.budget.wants_evaluation():
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

    def _train_step(self, batch: Any, state: Any, epoch: int, index: int) -> Any:
        batch = self.task.to_device(batch, self.device)
        lr = self._lr(epoch)
        batch_lr = getattr(self.task, "lr_factor", None)  # optional: a task's per-batch scale
        lr = self._current_lr = lr * batch_lr(batch) if batch_lr is not None else lr
        outcome = self.stepper.forward_backward(batch, state, lr)
        checks = [not math.isfinite(outcome.loss), self.signals.received is not None]
        nonfinite, signalled, timed = distributed.any_true(
            [*checks, self.budget.must_stop()], self.dist, self.device
        )
        # Decided on every process alike (a signal may reach only some of them).
        self._stop_now, self._out_of_time = signalled, timed
        if nonfinite:
            return self._nonfinite(outcome, epoch, index)
        clipped = self.stepper.apply(outcome.grad_norm)
        self.step += 1
        values = {"loss": outcome.loss}
        values.update({k: float(v) for k, v in outcome.metrics.items() if k != "count"})
        for meter in (self.interval, self.epoch_meter):
            meter.add_step(values, outcome.count, clipped, outcome.grad_norm)
        info = StepInfo(
            self.step, epoch, index, outcome.loss, lr, outcome.grad_norm, clipped, False,
            outcome.count,
        )  # fmt: skip
        self._emit("on_step_end", info)
        self._maybe_log_interval(epoch)
        return outcome.state

    def _nonfinite(self, outcome: StepOutcome, epoch: int, index: int) -> Any:
        value = outcome.loss
        where = f"step {self.step + 1} (epoch {epoch + 1}, batch {index + 1})"
        if not self.train_cfg.skip_nonfinite:
            self._log_end("nonfinite", epoch + 1, f"loss {value} at {where}")
            raise NonFiniteLossError(nonfinite_message(value, where, self.last_good_checkpoint))
        self.stepper.discard()
        self.step += 1
        for meter in (self.interval, self.epoch_meter):
            meter.add_skipped()
        info = StepInfo(
            self.step, epoch, index, value, self._lr(epoch), float("nan"), False, True,
            outcome.count,
        )  # fmt: skip
        self._emit("on_step_end", info)
        self._maybe_log_interval(epoch)
        return self.task.initial_state()

    def _maybe_log_interval(self, epoch: int) -> None:
        if self.step % self.train_cfg.log_every_steps:
            return
        now = time.perf_counter()
        rate = self.interval.count * self.dist.world_size / max(now - self._interval_start, 1e-9)
        record = self.interval.train_record(self.step, epoch + 1, self._current_lr)
        self.log({**record, f"{self.unit}_per_s": rate, "elapsed_s": now - self._clock})
        self.interval.reset()
        self._interval_start = now

    # ------------------------------------------------------------------------ evaluation

    def evaluate(self, split: str) -> dict[str, float]:
        """Evaluate the (unwrapped) model on ``valid`` or ``test``, in eval mode, no grad."""
        loader = self.data.valid if split == "valid" else self.data.test
        if loader is None:
            return {}
        return evaluate_model(self.task, self.model, loader, self.train_cfg.precision, self.device)

    def _evaluate_valid(self) -> None:
        # NT-ASGD: once averaging, the averaged weights are evaluated and saved as best.pt.
        with self.budget.measuring("evaluate"), averaged(self.optimizer):
            metrics = self.last_valid = self.evaluate("valid")
            elapsed = round(self.budget.elapsed(), 3)
            self._log_eval("valid", self.epoch + 1, metrics, elapsed_seconds=elapsed)
            value = self.metric(metrics, self.train_cfg.monitor, "train.monitor")
            if math.isfinite(value) and improves(value, self.best, self.train_cfg.monitor_mode):
                self.best = value
                self.save_checkpoint("best")
            self.schedule.on_evaluate(metrics)
            self._emit("on_evaluate", "valid", metrics)
        observe_validation(self.optimizer, value)

    def _final_test(self) -> tuple[dict[str, float], str]:
        """The test metrics and the checkpoint they were measured with (best, else last)."""
        if self.data.test is None:
            return {}, "best.pt"
        checkpoint = "last"
        if self.run.checkpoint_path("best").is_file():
            self.run.load_model(self.model, "best")
            checkpoint = "best"
        with averaged(self.optimizer) if checkpoint == "last" else contextlib.nullcontext():
            metrics = self.evaluate("test")
        self._log_eval("test", self.epoch, metrics, checkpoint=checkpoint)
        self._emit("on_evaluate", "test", metrics)
        return metrics, f"{checkpoint}.pt"

    # --------------------------------------------------------------------------- signals

    def _interrupt(self) -> None:
        name = self.signals.name
        self._log_end("interrupted", self.epoch + 1, name)
        self._emit("on_fit_end", "interrupted")
        last, run_dir = self.run.checkpoint_path("last"), str(self.run_dir)
        message = interrupted_message(name, self.step, last, run_dir)
        raise TrainingInterrupted(message, signum=self.signals.number, run_dir=run_dir)
