"""The study file: its schema, and loading a study by path or shipped name.

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


A study may also (or instead) hold ``[bases.<name>]`` and ``[[claims]]``: ablation groups
over shipped recipes, each variant trained with the seeds and compared with the group's
reference (:mod:`~rnnlab.analysis.comparison.claim_spec`).

The shipped studies are in ``rnnlab/studies``: ``simple-to-gated`` (the default),
``full``, and the claims on real data ``claims`` and ``claims-quick``.
:func:`~rnnlab.analysis.comparison.expansion.expand` turns a study into its runs.
"""

from __future__ import annotations

import itertools
import os
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rnnlab.analysis.comparison.claim_spec import Claim, ClaimBase
from rnnlab.config import format_errors, parse_toml
from rnnlab.errors import ConfigError
from rnnlab.registry import suggest

STUDY_PACKAGE = "rnnlab.studies"
DEFAULT_STUDY = "simple-to-gated"

LENGTH_KEYS = {
    "adding": "length",
    "copy": "length",
    "reber": "max_length",
    "mackey_glass": "window",
}
"""The ``[data]`` key that a study's ``lengths`` set, per task (default ``length``)."""


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
        bases: named bases of the claims (a recipe and sections over it).
        claims: ablation groups on those bases (no ``grid``/``tasks`` needed then).
    """

    name: str
    description: str = ""
    seeds: list[int] = Field(min_length=1)
    workers: int = Field(default=1, ge=1)
    budget: Budget
    base: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cell_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    grid: Grid | None = None
    tasks: list[StudyTask] = Field(default_factory=list)
    diagnose_task: str | None = None
    bases: dict[str, ClaimBase] = Field(default_factory=dict)
    claims: list[Claim] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        extra = set(self.base) - {"model", "train", "output"}
        if extra:
            raise ValueError(f"base may hold model, train and output sections, not {sorted(extra)}")
        if not self.claims and (self.grid is None or not self.tasks):
            raise ValueError("a study needs [grid] and [[tasks]], or [[claims]]")
        if self.tasks and self.grid is None:
            raise ValueError("[[tasks]] need a [grid] (at least grid.cell)")
        for claim in self.claims:
            if claim.base not in self.bases:
                raise ValueError(
                    f"claim {claim.name!r}: base {claim.base!r} is not one of [bases] "
                    f"({', '.join(sorted(self.bases)) or 'none'})"
                )
        names = [c.name for c in self.claims]
        if len(set(names)) != len(names):
            raise ValueError("two [[claims]] share a name")
        if self.diagnose_task is not None and self.diagnose_task not in {
            t.name for t in self.tasks
        }:
            raise ValueError(
                f"diagnose_task={self.diagnose_task!r} is not one of the study's tasks"
            )
        return self


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
