"""A study's runs: every task x length x grid combination x seed, each a full config.

Each run is one experiment config: ``base``, then the task's ``data`` and length, then the
grid values and the seed. Its name (:func:`run_id`) says what varies, e.g.
``adding-T100-lstm-lr0.01-s0``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rnnlab import config as config_mod
from rnnlab.analysis.comparison.claim_spec import base_config, config_key, merge
from rnnlab.analysis.comparison.study_spec import StudyConfig
from rnnlab.errors import ConfigError

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
    group: str = ""
    variant: str = ""
    train_eval_batches: int = 0
    same_as: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def expand_claims(study: StudyConfig) -> list[RunSpec]:
    """The runs of a study's ``[[claims]]``: every variant x seed, ``<claim>-<variant>-s<seed>``.

    A run whose config equals an earlier one's (a reference shared by several claims) gets
    ``same_as`` set to that run: it is trained once.

    Raises:
        ConfigError: a run's config is invalid (names the run).
    """
    bases = {name: base_config(b, name) for name, b in study.bases.items()}
    first: dict[str, str] = {}
    specs = []
    for claim in study.claims:
        max_steps = claim.budget.max_steps or study.budget.max_steps
        seconds = claim.budget.seconds or study.budget.seconds
        for variant in claim.arms():
            for seed in claim.seeds or study.seeds:
                ident = f"{claim.name}-{_slug(variant.name)}-s{seed}"
                train: dict[str, Any] = {"seed": seed, "max_steps": max_steps or 10**9}
                raw = merge(merge(bases[claim.base], variant.set), {"train": train})
                if max_steps is not None:
                    raw["train"].pop("epochs", None)  # the budget alone ends the run
                raw["train"].pop("early_stopping", None)  # a fixed budget for every variant
                if raw["train"].get("grad_clip_norm") == 0:
                    raw["train"].pop("grad_clip_norm")  # 0 turns clipping off, as in [grid]
                try:
                    cfg = config_mod.from_dict(raw)
                except ConfigError as err:
                    raise ConfigError(f"study run {ident}: {err}") from None
                key = config_key(raw)
                specs.append(
                    RunSpec(ident, cfg.task.name, 0, cfg.model.cell, seed, claim.metric,
                            {"claim": claim.name, "variant": variant.name}, raw, seconds,
                            None, claim.name, variant.name, claim.train_eval_batches,
                            first.get(key))
                )  # fmt: skip
                first.setdefault(key, ident)
    return specs


_merge = merge


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
    specs = _expand_grid(study) + expand_claims(study)
    ids = [s.run_id for s in specs]
    if len(set(ids)) != len(ids):
        raise ConfigError("the study expands to two runs with the same name; vary fewer settings")
    return specs


def _expand_grid(study: StudyConfig) -> list[RunSpec]:
    if study.grid is None:
        return []
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
    return specs
