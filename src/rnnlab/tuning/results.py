"""What a study has done: the result of :func:`~rnnlab.tuning.search.tune`, and which
trials count as finished."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from rnnlab.tuning.failures import FAIL_REASON


@dataclass
class TuneResult:
    """What :func:`~rnnlab.tuning.search.tune` returns.

    Attributes:
        study_name, storage, study_dir: where the study lives.
        best_value: the best objective value (``None`` when no trial completed).
        best_params: its sampled values ``{dotted path: value}``.
        counts: trials by state (``complete``, ``pruned``, ``fail``, ``running``, ...).
        trials_csv, best_toml: the files written (``best_toml`` ``None`` without a best).
        plots: the PNG files written.
    """

    study_name: str
    storage: str
    study_dir: Path
    best_value: float | None
    best_params: dict[str, Any]
    counts: dict[str, int]
    trials_csv: Path
    best_toml: Path | None
    plots: list[Path] = field(default_factory=list)


def finished(study: optuna.Study) -> int:
    """Trials that count towards the total: complete, pruned, or failed by their objective
    (a trial failed because its worker died is retried instead, so it does not count)."""
    count = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            trial.state == TrialState.FAIL and FAIL_REASON in trial.user_attrs
        ):
            count += 1
    return count
