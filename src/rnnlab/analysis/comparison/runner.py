"""Running a study: each run trained by :func:`rnnlab.api.train`, resumably, in parallel.

Each run is trained into ``<study dir>/runs/<run id>/``. When it ends, ``result.json`` is
written there (atomically); a later invocation skips every run that has one, and restarts
runs that were cut off, so a study resumes where it stopped. ``results.json`` in the study
directory gathers every run's record. With ``workers`` above 1 the runs go to a pool of
spawned processes (one torch thread each), longest runs first. A run stops at its budget's
steps or seconds, or once it reaches the task's ``stop_at``
(:mod:`~rnnlab.analysis.comparison.stoppers`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from rnnlab import api
from rnnlab import config as config_mod
from rnnlab.analysis.comparison.expansion import RunSpec, expand
from rnnlab.analysis.comparison.records import (
    RESULT_FILE,
    RunRecord,
    StudyResult,
    read_record,
    run_path,
)
from rnnlab.analysis.comparison.stoppers import StopAt, TimeBudget, higher_is_better
from rnnlab.analysis.comparison.study_spec import StudyConfig, load_study
from rnnlab.errors import ConfigError, NonFiniteLossError
from rnnlab.io import atomic_write_text
from rnnlab.training.callbacks import Callback
from rnnlab.training.metrics_log import read_metrics
from rnnlab.training.run_dir import RunDir

BASELINE_KEYS = {
    "mse": "baseline_mse",
    "cross_entropy": "baseline_cross_entropy",
    "recall_accuracy": "baseline_recall_accuracy",
    "long_range_accuracy": "baseline_long_range_accuracy",
}
"""Where a task's metrics give the baseline score of the compared metric."""

FIXED_BASELINES = {"nrmse": 1.0}
"""Baselines known without looking at the metrics (the mean predictor's NRMSE is 1)."""


def _curve(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    points = []
    for record in read_metrics(RunDir(run_dir).metrics_path):
        if record.get("kind") == "eval" and record.get("split") == "valid" and metric in record:
            points.append((int(record["step"]), float(record[metric])))
    return points


def _parameters(run_dir: Path) -> int:
    _, payload = RunDir(run_dir).checkpoint("last")
    return int(sum(t.numel() for t in payload["model"].values() if hasattr(t, "numel")))


def run_one(spec: RunSpec, run_dir: str | os.PathLike[str]) -> RunRecord:
    """Train one run with :func:`rnnlab.api.train` and write its ``result.json``.

    An existing incomplete run directory (no ``result.json``) is removed first.
    """
    folder = Path(run_dir)
    if folder.exists():
        shutil.rmtree(folder)
    cfg = config_mod.from_dict(spec.config)
    callbacks: list[Callback] = []
    if spec.seconds is not None:
        callbacks.append(TimeBudget(spec.seconds))
    stopper = None
    if spec.stop_at is not None:
        stopper = StopAt(spec.metric, spec.stop_at, higher_is_better(spec.task, spec.metric))
        callbacks.append(stopper)
    start = time.perf_counter()
    try:
        result = api.train(cfg, run_dir=folder, quiet=None, callbacks=callbacks)
    except NonFiniteLossError as error:
        raise NonFiniteLossError(
            f"study run {spec.run_id}: {error} (lower the learning rate or set a grad_clip; "
            "finished runs are kept and skipped when the study runs again)"
        ) from None
    seconds = time.perf_counter() - start
    if spec.metric not in result.test:
        raise ConfigError(
            f"study run {spec.run_id}: task {spec.task!r} has no test metric {spec.metric!r} "
            f"(it has: {', '.join(sorted(result.test))})"
        )
    baseline_key = BASELINE_KEYS.get(spec.metric)
    baseline = result.test.get(baseline_key) if baseline_key else None
    if baseline is None:
        baseline = FIXED_BASELINES.get(spec.metric)
    status = result.status
    if status == "early_stopped" and stopper is not None and stopper.reached:
        status = "target_reached"
    elif status == "early_stopped" and spec.seconds is not None:
        status = "time_budget"
    record = RunRecord(
        run_id=spec.run_id,
        task=spec.task,
        length=spec.length,
        cell=spec.cell,
        settings=spec.settings,
        seed=spec.seed,
        metric=spec.metric,
        value=float(result.test[spec.metric]),
        baseline=baseline,
        test=dict(result.test),
        parameters=_parameters(folder),
        seconds=seconds,
        steps=result.step,
        seconds_per_1000_steps=seconds / max(result.step, 1) * 1000.0,
        status=status,
        curve=_curve(folder, spec.metric),
    )
    atomic_write_text(folder / RESULT_FILE, json.dumps(record.to_dict(), indent=1))
    return record


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _run_in_worker(spec: RunSpec, run_dir: str) -> dict[str, Any]:
    return run_one(spec, run_dir).to_dict()


def run_study(
    study: StudyConfig | str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run (or resume) a study and write ``results.json`` in its directory.

    Args:
        study: a :class:`StudyConfig`, a study TOML path or a shipped study name; default
            the shipped ``simple-to-gated``.
        out_dir: the study directory (default ``studies/<name>``).
        workers: local processes (default the study's ``workers``); 1 runs in this process.
        progress: called with one line per finished or skipped run.

    Returns:
        A :class:`~rnnlab.analysis.comparison.records.StudyResult`. Reports are written by
        :func:`rnnlab.analysis.comparison.study_report.write_report`.
    """
    cfg = study if isinstance(study, StudyConfig) else load_study(study)
    folder = Path(out_dir) if out_dir is not None else Path("studies") / cfg.name
    specs = expand(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "study.json", json.dumps(cfg.model_dump(mode="json"), indent=1))
    say = progress or (lambda _line: None)
    start = time.perf_counter()
    found: dict[str, RunRecord] = {}
    for spec in specs:
        record = read_record(run_path(folder, spec.run_id))
        if record is not None:
            found[spec.run_id] = record
    skipped = [s.run_id for s in specs if s.run_id in found]
    if skipped:
        say(f"{len(skipped)} of {len(specs)} runs already finished in {folder}: skipped")
    todo = [s for s in specs if s.run_id not in found]
    count = workers if workers is not None else cfg.workers
    done = len(skipped)

    def finished(record: RunRecord) -> None:
        nonlocal done
        done += 1
        found[record.run_id] = record
        say(
            f"[{done}/{len(specs)}] {record.run_id}: {record.metric} {record.value:.4g} "
            f"({record.steps} steps, {record.seconds:.1f} s)"
        )

    if count <= 1 or len(todo) <= 1:
        for spec in todo:
            finished(run_one(spec, run_path(folder, spec.run_id)))
    else:
        todo.sort(key=lambda s: -s.length)  # longest first: the pool ends more evenly
        context = get_context("spawn")
        with ProcessPoolExecutor(count, mp_context=context, initializer=_worker_init) as pool:
            futures = [
                pool.submit(_run_in_worker, spec, str(run_path(folder, spec.run_id)))
                for spec in todo
            ]
            for future in as_completed(futures):
                finished(RunRecord.from_dict(future.result()))
    records = [found[s.run_id] for s in specs]
    atomic_write_text(folder / "results.json", json.dumps([r.to_dict() for r in records], indent=1))
    return StudyResult(
        cfg, folder, records, [s.run_id for s in todo], skipped, time.perf_counter() - start
    )
