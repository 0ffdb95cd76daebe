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

import dataclasses
import itertools
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
    config_hash,
    read_record,
    run_path,
)
from rnnlab.analysis.comparison.stoppers import StepTimer, StopAt, TimeBudget, higher_is_better
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


def _best_valid(run_dir: Path, metric: str, higher: bool) -> dict[str, float]:
    """The validation metrics of the best evaluation by ``metric`` (the tested checkpoint's,
    when the run monitors that metric)."""
    evals = [
        r
        for r in read_metrics(RunDir(run_dir).metrics_path)
        if r.get("kind") == "eval" and r.get("split") == "valid" and metric in r
    ]
    if not evals:
        return {}
    best = (max if higher else min)(evals, key=lambda r: float(r[metric]))
    return {k: float(v) for k, v in best.items() if isinstance(v, float) and k != "elapsed_s"}


def train_split_metrics(run_dir: Path, batches: int) -> dict[str, float]:
    """The best checkpoint's metrics on the first ``batches`` training batches, in eval mode
    (no dropout): the training side of the train-valid gap, at the cost of ``batches``
    forward passes instead of a whole epoch."""
    import torch

    from rnnlab.tasks import TASKS
    from rnnlab.training.checkpoint import load_model_state
    from rnnlab.training.seeding import seed_everything

    run = RunDir(run_dir)
    cfg = run.config()
    path, payload = run.checkpoint("best")
    task = TASKS.get(cfg.task.name)(cfg)
    seed_everything(cfg.train.seed)
    data = task.build_data()
    model = task.build_model(data.spec)
    load_model_state(model, payload.get("model"), path)
    model.eval()
    with torch.no_grad():
        found = task.evaluate(model, itertools.islice(iter(data.train), batches))
    return {k: float(v) for k, v in found.items()}


def _parameters(run_dir: Path) -> int:
    _, payload = RunDir(run_dir).checkpoint("last")
    return int(sum(t.numel() for t in payload["model"].values() if hasattr(t, "numel")))


def raise_nonfinite(spec: RunSpec, error: Exception) -> None:
    """Re-raise a non-finite loss with the run's name and what to do."""
    raise NonFiniteLossError(
        f"study run {spec.run_id}: {error} (lower the learning rate or set a grad_clip; "
        "finished runs are kept and skipped when the study runs again)"
    ) from None


def _diverged(spec: RunSpec, folder: Path, seconds: float) -> RunRecord:
    """A claim's run whose loss became non-finite: recorded as diverged (metric ``inf``),
    a result of the claim (clipping off may do this), not an error of the study."""
    bad = {spec.metric: float("inf")}
    steps = max((int(r.get("step", 0)) for r in read_metrics(RunDir(folder).metrics_path)),
                default=0)  # fmt: skip
    record = RunRecord(
        spec.run_id, spec.task, spec.length, spec.cell, spec.settings, spec.seed, spec.metric,
        float("inf"), None, bad, 0, seconds, steps, seconds / max(steps, 1) * 1000.0,
        "nonfinite", _curve(folder, spec.metric), spec.group, spec.variant, bad, {}, "",
        config_hash(spec.config),
    )  # fmt: skip
    atomic_write_text(folder / RESULT_FILE, json.dumps(record.to_dict(), indent=1))
    return record


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
    timer = StepTimer()
    callbacks.append(timer)
    stopper = None
    if spec.stop_at is not None:
        stopper = StopAt(spec.metric, spec.stop_at, higher_is_better(spec.task, spec.metric))
        callbacks.append(stopper)
    start = time.perf_counter()
    try:
        result = api.train(cfg, run_dir=folder, quiet=None, callbacks=callbacks)
    except NonFiniteLossError as error:
        if not spec.group:
            raise_nonfinite(spec, error)
        return _diverged(spec, folder, time.perf_counter() - start)
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
    higher = higher_is_better(spec.task, spec.metric)
    train = train_split_metrics(folder, spec.train_eval_batches) if spec.train_eval_batches else {}
    per_step = timer.seconds_per_1000_steps
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
        seconds_per_1000_steps=per_step
        if per_step is not None
        else seconds / max(result.step, 1) * 1000.0,
        status=status,
        curve=_curve(folder, spec.metric),
        group=spec.group,
        variant=spec.variant,
        valid=_best_valid(folder, spec.metric, higher),
        train=train,
        config_hash=config_hash(spec.config),
    )
    atomic_write_text(folder / RESULT_FILE, json.dumps(record.to_dict(), indent=1))
    return record


def warm_up() -> None:
    """One-time costs before any run is timed: build (or load) the native recurrence."""
    from rnnlab.nn import native

    native.built()


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)
    warm_up()


def estimate(specs: list[RunSpec], workers: int) -> str:
    """One line: how many runs will train and how long they take at most (their time caps)."""
    todo = [s for s in specs if s.same_as is None]
    shared = len(specs) - len(todo)
    line = f"{len(todo)} runs to train" + (f" ({shared} more shared)" if shared else "")
    capped = [s.seconds for s in todo if s.seconds is not None]
    if len(capped) == len(todo) and todo:
        # A run's cap counts from the start of its training; set-up and the final test come
        # on top (about 15 s a run on real data here).
        total = sum(capped) + 15.0 * len(todo)
        line += (
            f"; each capped at {max(capped):.0f} s of training, so at most about "
            f"{total / max(workers, 1) / 60:.0f} min with {workers} worker(s)"
        )
    return line


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
        if record is not None and record.config_hash not in ("", config_hash(spec.config)):
            say(f"{spec.run_id}: its config changed since it ran: training it again")
            record = None
        if record is not None:
            found[spec.run_id] = record
    shared = [s for s in specs if s.same_as is not None]
    specs_all, specs = specs, [s for s in specs if s.same_as is None]
    skipped = [s.run_id for s in specs if s.run_id in found]
    if skipped:
        say(f"{len(skipped)} of {len(specs)} runs already finished in {folder}: skipped")
    todo = [s for s in specs if s.run_id not in found]
    count = workers if workers is not None else cfg.workers
    say(f"study {cfg.name}: {estimate(specs_all, count)}")
    done = len(skipped)

    def finished(record: RunRecord) -> None:
        nonlocal done
        done += 1
        found[record.run_id] = record
        ran = done - len(skipped)
        left = len(specs) - done
        pace = (time.perf_counter() - start) / ran  # wall seconds per run, workers included
        say(
            f"[{done}/{len(specs)}] {record.run_id}: {record.metric} {record.value:.4g} "
            f"({record.steps} steps, {record.seconds:.1f} s)"
            + (f"; about {left * pace / 60:.0f} min left at this pace" if left else "")
        )

    if count <= 1 or len(todo) <= 1:
        if todo:
            warm_up()
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
    for spec in shared:
        found[spec.run_id] = dataclasses.replace(
            found[str(spec.same_as)], run_id=spec.run_id, settings=dict(spec.settings),
            group=spec.group, variant=spec.variant, shared_from=str(spec.same_as),
        )  # fmt: skip
    specs = specs_all
    records = [found[s.run_id] for s in specs]
    atomic_write_text(folder / "results.json", json.dumps([r.to_dict() for r in records], indent=1))
    return StudyResult(
        cfg, folder, records, [s.run_id for s in todo], skipped, time.perf_counter() - start
    )
