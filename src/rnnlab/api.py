"""Python-first entry points: everything ``rnnlab train | evaluate | runs`` does.

Example:
    >>> import rnnlab.api as api
    >>> result = api.train("adding", overrides=["train.epochs=1"], quiet=None)  # doctest: +SKIP
    >>> api.evaluate(result.run_dir, split="test")                               # doctest: +SKIP
    {'loss': 0.0123, 'mse': 0.0123, 'baseline_mse': 0.166, 'relative_mse': 0.074}
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from rnnlab import config as config_mod
from rnnlab.config import ExperimentConfig
from rnnlab.errors import ConfigError, RunDirError, UserError
from rnnlab.training.callbacks import Callback
from rnnlab.training.checkpoint import load_model_state
from rnnlab.training.devices import resolve_device
from rnnlab.training.metrics_log import read_metrics
from rnnlab.training.outcome import FitResult
from rnnlab.training.run_dir import RunDir, check_which
from rnnlab.training.seeding import seed_everything
from rnnlab.training.trainer import Trainer


def _task_for(config: ExperimentConfig) -> Any:
    from rnnlab.tasks import TASKS

    return TASKS.get(config.task.name)(config)


def default_run_dir(config: ExperimentConfig) -> Path:
    """``output.dir / output.name``, the name defaulting to ``<task>-<cell>-<date>-<time>``."""
    root = Path(config.output.dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(
            f"output.dir: {root} is a file, not a directory; set output.dir (or --run-dir) "
            "to a directory"
        )
    if config.output.name:
        return root / config.output.name
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "under torchrun, set --run-dir or output.name so that every process "
            "uses the same run directory"
        )
    stem = f"{config.task.name}-{config.model.cell}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, number = root / stem, 1
    while candidate.exists():
        number += 1
        candidate = root / f"{stem}-{number}"
    return candidate


def train(
    config: ExperimentConfig | str | os.PathLike[str] | None = None,
    *,
    overrides: Sequence[str] = (),
    run_dir: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    quiet: bool | None = False,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Train a config (or shipped recipe), or resume a run directory.

    Args:
        config: an :class:`ExperimentConfig`, a TOML path or a recipe name; omitted when
            resuming.
        overrides: dotted ``key=value`` overrides (``"train.lr=0.5"``).
        run_dir: where to write the run (default ``output.dir/output.name``).
        resume: a run directory to continue from its ``checkpoints/last.pt``; its
            ``config.toml`` is used, with ``overrides`` applied.
        quiet: ``False`` progress bar, ``True`` plain lines, ``None`` nothing printed.
        callbacks: extra :class:`~rnnlab.training.Callback` objects.

    Returns:
        The :class:`~rnnlab.training.FitResult`.

    Raises:
        UserError: bad config, run directory or checkpoint (one-line messages).
        NonFiniteLossError, TrainingInterrupted: see :meth:`Trainer.fit`.
    """
    if resume is not None:
        if config is not None:
            raise UserError("pass either a config or resume=RUN_DIR, not both")
        target = Path(resume)
        previous = RunDir(target)
        if not previous.is_run():
            raise RunDirError(f"cannot resume {target}: {previous.config_path} does not exist")
        cfg = previous.config(overrides)
    else:
        if config is None:
            raise UserError("give a config file or recipe name, or resume=RUN_DIR")
        if isinstance(config, ExperimentConfig):
            cfg = config_mod.with_overrides(config, overrides) if overrides else config
        else:
            cfg = config_mod.load(config, overrides)
        target = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    trainer = Trainer(
        _task_for(cfg), cfg, target, resume=resume is not None, callbacks=callbacks, quiet=quiet
    )
    return trainer.fit()


def evaluate(
    run_dir: str | os.PathLike[str],
    split: Literal["valid", "test"] = "test",
    checkpoint: Literal["best", "last"] = "best",
    device: str | None = None,
) -> dict[str, float]:
    """Evaluate a finished (or interrupted) run's checkpoint on a split.

    Args:
        run_dir: the run directory.
        split: ``valid`` or ``test``.
        checkpoint: ``best`` (falls back to ``last`` when there is no best yet) or ``last``.
        device: ``cpu``, ``cuda``, ...; default: the run's ``train.device``.

    Returns:
        The task's metrics.

    Raises:
        RunDirError, CheckpointError, ConfigError: with one-line messages.
    """
    run = RunDir(run_dir)
    cfg = run.config()
    if split not in ("valid", "test"):
        raise UserError(f"split={split!r} is not allowed (allowed: valid, test)")
    path, payload = run.checkpoint(check_which(checkpoint))
    task = _task_for(cfg)
    seed_everything(cfg.train.seed)
    data = task.build_data()
    loader = data.valid if split == "valid" else data.test
    if loader is None:
        raise UserError(f"task {cfg.task.name!r} has no {split} split")
    target = resolve_device(device or cfg.train.device)
    model = task.build_model(data.spec)
    load_model_state(model, payload.get("model"), path)
    model.to(target).eval()
    with torch.no_grad():
        return {k: float(v) for k, v in task.evaluate(model, loader).items()}


@dataclass
class RunSummary:
    """One run directory, as ``rnnlab runs`` shows it."""

    path: Path
    task: str
    cell: str
    status: str
    step: int
    epoch: int
    monitor: str
    best: float | None
    test: dict[str, float]


def list_runs(root: str | os.PathLike[str] = "runs") -> list[RunSummary]:
    """Summaries of the run directories under ``root`` (newest first).

    Raises:
        RunDirError: ``root`` does not exist.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise RunDirError(f"no run folder {folder}")
    found = []
    for sub in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        run = RunDir(sub)
        if not run.is_run():
            continue
        try:
            raw = config_mod.tomllib.loads(run.config_path.read_text(encoding="utf-8"))
        except config_mod.tomllib.TOMLDecodeError:
            continue
        records = read_metrics(run.metrics_path)
        monitor = str(raw.get("train", {}).get("monitor", "loss"))
        mode = raw.get("train", {}).get("monitor_mode", "min")
        valid = [
            r[monitor]
            for r in records
            if r.get("split") == "valid" and isinstance(r.get(monitor), float)
        ]
        best = (min(valid) if mode == "min" else max(valid)) if valid else None
        ends = [r for r in records if r.get("kind") == "end"]
        tests = [r for r in records if r.get("split") == "test"]
        last = records[-1] if records else {}
        status = (
            ends[-1]["status"]
            if ends and ends[-1] is last
            else ("running?" if records else "empty")
        )
        test = {k: v for k, v in (tests[-1] if tests else {}).items() if isinstance(v, float)}
        found.append(
            RunSummary(
                path=sub,
                task=str(raw.get("task", {}).get("name", "?")),
                cell=str(raw.get("model", {}).get("cell", "?")),
                status=status,
                step=int(last.get("step", 0)),
                epoch=max(
                    (int(r.get("epoch", 0)) for r in records if r.get("kind") == "epoch"), default=0
                ),
                monitor=monitor,
                best=best,
                test=test,
            )
        )
    return found
