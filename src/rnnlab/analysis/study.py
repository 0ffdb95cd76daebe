"""Architecture studies: tasks x lengths x settings x seeds, each run through ``rnnlab train``.

A study is a TOML file::

    name = "simple-to-gated"
    seeds = [0, 1, 2]
    workers = 2                       # local processes (one torch thread each)

    [budget]                          # per run: steps, seconds, or both (first reached)
    max_steps = 1500
    seconds = 120

    [base]                            # experiment sections shared by every run
    model = { hidden_size = 32 }
    train = { optimizer = "adam", lr = 0.01, batch_size = 64, device = "cpu" }

    [cell_options.lstm]               # model options for one cell only
    forget_bias = 1.0

    [grid]                            # settings to vary; every combination runs
    cell = ["rnn", "lstm", "gru"]
    hidden_size = [32]                # also: num_layers, bidirectional, dropout,
    lr = [0.01]                       # recurrent_dropout, zoneout, weight_drop,
    grad_clip = [1.0, 0.0]            # layer_norm; grad_clip 0 = clipping off

    [[tasks]]
    name = "adding"
    lengths = [50, 100]               # written to data.length (see LENGTH_KEYS)
    metric = "mse"                    # the test metric the study compares
    stop_at = 0.002                   # optional: stop once the valid metric passes it
    data = { train_samples = 10000 }

Each run is one experiment config (``base``, then the task's ``data`` and length, then the
grid values and the seed) trained by :func:`rnnlab.api.train` into
``<study dir>/runs/<run id>/``. When it ends, ``result.json`` is written there (atomically);
a later invocation skips every run that has one, and restarts runs that were cut off, so a
study resumes where it stopped. ``results.json`` in the study directory gathers every run's
record.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from importlib import resources
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rnnlab.config import format_errors, parse_toml
from rnnlab.errors import ConfigError, NonFiniteLossError
from rnnlab.io import atomic_write_text
from rnnlab.registry import suggest
from rnnlab.training.callbacks import Callback

STUDY_PACKAGE = "rnnlab.studies"
DEFAULT_STUDY = "simple-to-gated"

LENGTH_KEYS = {
    "adding": "length",
    "copy": "length",
    "reber": "max_length",
    "mackey_glass": "window",
}
"""The ``[data]`` key that a study's ``lengths`` set, per task (default ``length``)."""

BASELINE_KEYS = {
    "mse": "baseline_mse",
    "cross_entropy": "baseline_cross_entropy",
    "recall_accuracy": "baseline_recall_accuracy",
    "long_range_accuracy": "baseline_long_range_accuracy",
}
"""Where a task's metrics give the baseline score of the compared metric."""

FIXED_BASELINES = {"nrmse": 1.0}
"""Baselines known without looking at the metrics (the mean predictor's NRMSE is 1)."""

_MODEL_KEYS = (
    "cell",
    "hidden_size",
    "num_layers",
    "bidirectional",
    "dropout",
    "recurrent_dropout",
    "zoneout",
    "weight_drop",
    "layer_norm",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StudyTask(_Strict):
    """One ``[[tasks]]`` entry: a registered task, its lengths, the compared metric.

    Attributes:
        name: a registered task (``adding``, ``copy``, ``reber``, ``mackey_glass``, ...).
        lengths: values of the task's length key (:data:`LENGTH_KEYS`); empty: the task's
            own default, recorded as length 0.
        metric: the test metric recorded for each run.
        data: ``[data]`` settings for every run of this task.
        train: ``[train]`` settings for this task only (over ``base.train``).
        length_key: the ``[data]`` key that ``lengths`` set (default from
            :data:`LENGTH_KEYS`).
        stop_at: stop a run early once its validation ``metric`` passes this value (below it
            for errors, above it for accuracies); the test metric is then measured on the
            best checkpoint as usual. Saves the budget of runs that have clearly solved the
            task; ``None`` runs every budget to the end.
    """

    name: str
    lengths: list[int] = Field(default_factory=list)
    metric: str
    stop_at: float | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    length_key: str | None = None

    @property
    def key(self) -> str:
        """The ``[data]`` key that ``lengths`` set."""
        return self.length_key or LENGTH_KEYS.get(self.name, "length")


class Budget(_Strict):
    """``[budget]``: when each run stops: ``max_steps``, ``seconds``, whichever comes first."""

    max_steps: int | None = Field(default=None, gt=0)
    seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some(self) -> Budget:
        if self.max_steps is None and self.seconds is None:
            raise ValueError("set budget.max_steps or budget.seconds (or both)")
        return self


class Grid(_Strict):
    """``[grid]``: the settings to vary; the study runs every combination.

    Attributes:
        cell: cells (``rnn`` is the tanh RNN).
        hidden_size, num_layers, bidirectional, dropout, recurrent_dropout, zoneout,
            weight_drop, layer_norm: ``[model]`` settings.
        lr: learning rates.
        grad_clip: gradient clipping norms; 0 turns clipping off.
    """

    cell: list[str] = Field(min_length=1)
    hidden_size: list[int] | None = None
    num_layers: list[int] | None = None
    bidirectional: list[bool] | None = None
    dropout: list[float] | None = None
    recurrent_dropout: list[float] | None = None
    zoneout: list[float] | None = None
    weight_drop: list[float] | None = None
    layer_norm: list[bool] | None = None
    lr: list[float] | None = None
    grad_clip: list[float] | None = None

    def combinations(self) -> list[dict[str, Any]]:
        """Every combination as ``{setting: value}``, cells varying slowest."""
        names = [n for n in type(self).model_fields if getattr(self, n) is not None]
        values = [getattr(self, n) for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


class StudyConfig(_Strict):
    """A whole study file (see the module docstring).

    Attributes:
        name: the study's name (the default output folder is ``studies/<name>``).
        description: one line shown in the report.
        seeds: training seeds (each also seeds the model's initialization).
        workers: local processes running runs in parallel.
        budget: the per-run budget.
        base: experiment sections (``model``, ``train``) shared by every run.
        cell_options: per cell, ``[model]`` options only that cell takes
            (``forget_bias`` for ``lstm``).
        grid: the settings to vary.
        tasks: the tasks with their lengths.
        diagnose_task: the task whose longest length gets the gradient-flow analysis (at
            initialization and trained) in the report; default: the first task.
    """

    name: str
    description: str = ""
    seeds: list[int] = Field(min_length=1)
    workers: int = Field(default=1, ge=1)
    budget: Budget
    base: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cell_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    grid: Grid
    tasks: list[StudyTask] = Field(min_length=1)
    diagnose_task: str | None = None

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        extra = set(self.base) - {"model", "train", "output"}
        if extra:
            raise ValueError(f"base may hold model, train and output sections, not {sorted(extra)}")
        if self.diagnose_task is not None and self.diagnose_task not in {
            t.name for t in self.tasks
        }:
            raise ValueError(
                f"diagnose_task={self.diagnose_task!r} is not one of the study's tasks"
            )
        return self


@dataclass(frozen=True)
class RunSpec:
    """One run of a study.

    Attributes:
        run_id: the run directory's name.
        task, length, cell, seed, metric: what the record will say.
        settings: the grid values of this run (``cell`` included).
        config: the full experiment config as a plain dict.
        seconds: the time budget, or ``None``.
    """

    run_id: str
    task: str
    length: int
    cell: str
    seed: int
    metric: str
    settings: dict[str, Any]
    config: dict[str, Any]
    seconds: float | None = None
    stop_at: float | None = None


@dataclass
class RunRecord:
    """One finished run, as stored in ``result.json`` and ``results.json``.

    Attributes:
        run_id, task, length, cell, settings, seed: which run.
        metric, value, baseline: the compared test metric, its value, the baseline's value.
        test: every test metric.
        parameters: trainable parameters of the model.
        seconds: wall time of the run (training, evaluation, test).
        steps: optimizer steps done.
        seconds_per_1000_steps: ``seconds / steps * 1000``.
        status: the trainer's status (``max_steps``, ``completed``), or ``target_reached``
            (``stop_at``) or ``time_budget`` (``budget.seconds``).
    """

    run_id: str
    task: str
    length: int
    cell: str
    settings: dict[str, Any]
    seed: int
    metric: str
    value: float
    baseline: float | None
    test: dict[str, float]
    parameters: int
    seconds: float
    steps: int
    seconds_per_1000_steps: float
    status: str
    curve: list[tuple[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Read a record back (from ``result.json``)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["curve"] = [tuple(p) for p in known.get("curve", [])]
        return cls(**known)


# ------------------------------------------------------------------------------ loading


def study_names() -> list[str]:
    """The studies shipped in ``rnnlab/studies`` (without ``.toml``)."""
    folder = resources.files(STUDY_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_study(study: str | os.PathLike[str] | None = None) -> StudyConfig:
    """Load a study TOML file, or a shipped study by name (default ``simple-to-gated``).

    Raises:
        ConfigError: missing file, bad TOML, or a bad key or value (one line each).
    """
    name = DEFAULT_STUDY if study is None else study
    path = Path(name)
    if path.is_file():
        text, source = path.read_text(encoding="utf-8"), str(path)
    elif str(name) in study_names():
        text = resources.files(STUDY_PACKAGE).joinpath(f"{name}.toml").read_text("utf-8")
        source = f"study {name!r}"
    else:
        names = study_names()
        raise ConfigError(
            f"{str(name)!r} is neither a study file nor a shipped study"
            f"{suggest(str(name), names)} (studies: {', '.join(names)})"
        )
    raw = parse_toml(text, source)
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{format_errors(err, StudyConfig, raw)} (in {source})") from None


# ---------------------------------------------------------------------------- expansion


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_id(
    task: str, length: int, settings: Mapping[str, Any], seed: int, varied: Sequence[str]
) -> str:
    """A readable, unique run directory name: ``adding-T100-lstm-lr0.01-s0``."""
    parts = [task, f"T{length}", str(settings["cell"])]
    parts += [f"{k}{_short(settings[k])}" for k in varied if k != "cell"]
    parts.append(f"s{seed}")
    return "-".join(parts)


def expand(study: StudyConfig) -> list[RunSpec]:
    """Every run of ``study``, with its full experiment config (validated later, per run).

    Raises:
        ConfigError: a run's config is invalid (names the run).
    """
    from rnnlab import config as config_mod

    combos = study.grid.combinations()
    varied = [k for k in combos[0] if len({_short(c[k]) for c in combos}) > 1]
    specs = []
    for task in study.tasks:
        for length in task.lengths or [0]:
            for settings in combos:
                for seed in study.seeds:
                    cell = settings["cell"]
                    model = {k: settings[k] for k in _MODEL_KEYS if k in settings}
                    train: dict[str, Any] = {"seed": seed}
                    if "lr" in settings:
                        train["lr"] = settings["lr"]
                    if "grad_clip" in settings:
                        train["grad_clip_norm"] = settings["grad_clip"] or None
                    budget = {"max_steps": study.budget.max_steps or 10**9}  # seconds stop it
                    data = dict(task.data)
                    if task.lengths:
                        data[task.key] = length
                    raw = _merge(
                        study.base,
                        {
                            "task": {"name": task.name},
                            "data": data,
                            "model": {**study.cell_options.get(cell, {}), **model},
                            "train": {**budget, **task.train, **train},
                        },
                    )
                    if raw["train"].get("grad_clip_norm") is None:
                        raw["train"].pop("grad_clip_norm", None)
                    ident = run_id(task.name, length, settings, seed, varied)
                    try:
                        config_mod.from_dict(raw)
                    except ConfigError as err:
                        raise ConfigError(f"study run {ident}: {err}") from None
                    specs.append(
                        RunSpec(ident, task.name, length, cell, seed, task.metric,
                                dict(settings), raw, study.budget.seconds, task.stop_at)
                    )  # fmt: skip
    ids = [s.run_id for s in specs]
    if len(set(ids)) != len(ids):
        raise ConfigError("the study expands to two runs with the same name; vary fewer settings")
    return specs


# ------------------------------------------------------------------------------ running


class TimeBudget(Callback):
    """Stops a run once ``seconds`` of wall time have passed since it started."""

    name = "time_budget"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = 0.0

    def on_fit_start(self, trainer: Any) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, trainer: Any, info: Any) -> None:
        if time.perf_counter() - self.start >= self.seconds:
            trainer.should_stop = True
            trainer.stop_reason = f"time budget of {self.seconds:g} s"


class StopAt(Callback):
    """Stops a run once the validation ``metric`` passes ``value``.

    Args:
        metric: a validation metric of the task.
        value: the value to pass.
        higher_is_better: pass above ``value`` (accuracies) or below it (errors).
    """

    name = "stop_at"

    def __init__(self, metric: str, value: float, higher_is_better: bool) -> None:
        self.metric = metric
        self.value = value
        self.higher_is_better = higher_is_better
        self.reached = False

    def on_evaluate(self, trainer: Any, split: str, metrics: dict[str, float]) -> None:
        if split != "valid" or self.metric not in metrics:
            return
        current = metrics[self.metric]
        passed = current > self.value if self.higher_is_better else current < self.value
        if passed:
            self.reached = True
            trainer.should_stop = True
            trainer.stop_reason = f"valid {self.metric} {current:.4g} passed {self.value:g}"


def higher_is_better(task: str, metric: str) -> bool:
    """The direction of a metric: from the solved criteria, else from its name."""
    from rnnlab.analysis.conclusions import HIGHER_IS_BETTER, SOLVED

    criterion = SOLVED.get((task, metric))
    return criterion.higher_is_better if criterion else metric in HIGHER_IS_BETTER


def _curve(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    from rnnlab.training.metrics import read_metrics

    points = []
    for record in read_metrics(run_dir / "metrics.jsonl"):
        if record.get("kind") == "eval" and record.get("split") == "valid" and metric in record:
            points.append((int(record["step"]), float(record[metric])))
    return points


def _parameters(run_dir: Path) -> int:
    from rnnlab.training.checkpoint import load_checkpoint

    payload = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    return int(sum(t.numel() for t in payload["model"].values() if hasattr(t, "numel")))


def run_one(spec: RunSpec, run_dir: str | os.PathLike[str]) -> RunRecord:
    """Train one run with :func:`rnnlab.api.train` and write its ``result.json``.

    An existing incomplete run directory (no ``result.json``) is removed first.
    """
    from rnnlab import api
    from rnnlab import config as config_mod

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
    atomic_write_text(folder / "result.json", json.dumps(record.to_dict(), indent=1))
    return record


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _run_in_worker(spec: RunSpec, run_dir: str) -> dict[str, Any]:
    return run_one(spec, run_dir).to_dict()


def read_record(run_dir: Path) -> RunRecord | None:
    """The ``result.json`` of a finished run, or ``None`` when the run did not finish."""
    path = run_dir / "result.json"
    if not path.is_file():
        return None
    try:
        return RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, KeyError):
        return None


@dataclass
class StudyResult:
    """What :func:`run_study` returns.

    Attributes:
        study: the study config.
        out_dir: the study directory.
        records: one per run, in expansion order.
        ran, skipped: run ids trained now and found finished.
        seconds: wall time of this invocation.
    """

    study: StudyConfig
    out_dir: Path
    records: list[RunRecord]
    ran: list[str]
    skipped: list[str]
    seconds: float


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
        A :class:`StudyResult`. Reports are written by :func:`rnnlab.analysis.report.write_report`.
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
        record = read_record(folder / "runs" / spec.run_id)
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
            finished(run_one(spec, folder / "runs" / spec.run_id))
    else:
        todo.sort(key=lambda s: -s.length)  # longest first: the pool ends more evenly
        context = get_context("spawn")
        with ProcessPoolExecutor(count, mp_context=context, initializer=_worker_init) as pool:
            futures = [
                pool.submit(_run_in_worker, spec, str(folder / "runs" / spec.run_id))
                for spec in todo
            ]
            for future in as_completed(futures):
                finished(RunRecord.from_dict(future.result()))
    records = [found[s.run_id] for s in specs]
    atomic_write_text(folder / "results.json", json.dumps([r.to_dict() for r in records], indent=1))
    return StudyResult(
        cfg, folder, records, [s.run_id for s in todo], skipped, time.perf_counter() - start
    )


def compare(
    study: StudyConfig | str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
    gradient_flow: bool = True,
) -> tuple[StudyResult, Any]:
    """What ``rnnlab compare`` does: run (or resume) a study, then write its report.

    Args:
        study, out_dir, workers, progress: as in :func:`run_study`.
        gradient_flow: also measure the gradient flow of the trained models.

    Returns:
        ``(result, report)``: the :class:`StudyResult` and the
        :class:`~rnnlab.analysis.report.Report` (table rows, sentences, files).

    Example:
        >>> result, report = compare()            # doctest: +SKIP
        >>> print("\\n".join(report.sentences))   # doctest: +SKIP
    """
    from rnnlab.analysis.report import write_report

    result = run_study(study, out_dir, workers=workers, progress=progress)
    return result, write_report(result, gradient_flow=gradient_flow)
