"""What a study leaves per run and in all: the run records and the study result.

Each finished run writes ``result.json`` (a :class:`RunRecord`) into its run directory,
``<study dir>/runs/<run id>/``; ``results.json`` in the study directory gathers them. The
runner writes these records; the table, the plots and the report read them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.analysis.comparison.study_spec import StudyConfig

RESULT_FILE = "result.json"
"""A finished run's record, in its run directory."""


def run_path(study_dir: Path, run_id: str) -> Path:
    """The run directory of run ``run_id``: ``<study dir>/runs/<run id>``."""
    return study_dir / "runs" / run_id


@dataclass
class RunRecord:
    """One finished run, as stored in ``result.json`` and ``results.json``.

    Attributes:
        run_id, task, length, cell, settings, seed: which run.
        metric, value, baseline: the compared test metric, its value, the baseline's value.
        test: every test metric.
        parameters: trainable parameters of the model.
        seconds: wall time of the run (set-up, training, evaluation, test).
        steps: optimizer steps done.
        seconds_per_1000_steps: training time per 1,000 steps: the steps' own time, without
            the first step (one-time set-up: the native library build, lazy allocations)
            and without the steps followed by an evaluation or a checkpoint
            (:class:`~rnnlab.analysis.comparison.stoppers.StepTimer`).
        status: the trainer's status (``max_steps``, ``completed``), or ``target_reached``
            (``stop_at``) or ``time_budget`` (``budget.seconds``).
        curve: ``(step, valid metric)`` at every evaluation.
        group, variant: the claim and variant of a ``[[claims]]`` run (else empty).
        valid: the validation metrics of the best evaluation (the tested checkpoint).
        train: the best checkpoint's metrics on the first training batches (claims with
            ``train_eval_batches``), else empty.
        shared_from: the run this record was copied from (a config shared by two claims
            is trained once), else empty.
        config_hash: a hash of the run's config (:func:`config_hash`): a resumed study
            retrains a finished run whose config has changed since (empty: not checked).
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
    group: str = ""
    variant: str = ""
    valid: dict[str, float] = field(default_factory=dict)
    train: dict[str, float] = field(default_factory=dict)
    shared_from: str = ""
    config_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Read a record back (from ``result.json``)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["curve"] = [tuple(p) for p in known.get("curve", [])]
        return cls(**known)


def config_hash(config: Mapping[str, Any]) -> str:
    """A short hash of a run's config, its output section left out."""
    text = json.dumps({k: v for k, v in config.items() if k != "output"}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_record(run_dir: Path) -> RunRecord | None:
    """The ``result.json`` of a finished run, or ``None`` when the run did not finish."""
    path = run_dir / RESULT_FILE
    if not path.is_file():
        return None
    try:
        return RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, KeyError):
        return None


@dataclass
class StudyResult:
    """What :func:`~rnnlab.analysis.comparison.runner.run_study` returns.

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

    def run_dir(self, run_id: str) -> Path:
        """The run directory of run ``run_id`` in this study."""
        return run_path(self.out_dir, run_id)
