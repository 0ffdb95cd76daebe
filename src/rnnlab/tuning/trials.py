"""Running trials: the objective each trial calls, and one worker's optimize loop.

Each trial samples the search space, turns the values into ``--set`` style overrides, and
trains with the same code as ``rnnlab train`` in its own run directory
(``<study dir>/trials/<number>``). The objective is the best validation value of the config's
``train.monitor`` in the direction ``train.monitor_mode``; a
:class:`~rnnlab.tuning.pruning.PruningCallback` reports it after each evaluation so the
pruner can stop poor trials early.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from rnnlab import api
from rnnlab import config as config_mod
from rnnlab.config import ExperimentConfig
from rnnlab.errors import TrainingInterrupted
from rnnlab.tuning.failures import FAIL_REASON, TrialFailed
from rnnlab.tuning.pruning import PruningCallback, make_pruner
from rnnlab.tuning.results import finished
from rnnlab.tuning.samplers import make_sampler
from rnnlab.tuning.space import SearchSpace
from rnnlab.tuning.storage import open_storage


class Objective:
    """``objective(trial)``: sample, train with the overrides, return the best valid metric.

    Args:
        config: the base config (fixed overrides of the space already applied).
        space: the search space.
        study_dir: trial run directories go to ``study_dir/trials/<number>``.
    """

    def __init__(self, config: ExperimentConfig, space: SearchSpace, study_dir: Path) -> None:
        self.config = config
        self.space = space
        self.study_dir = study_dir

    def __call__(self, trial: optuna.Trial) -> float:
        values = self.space.sample(trial)
        overrides = self.space.to_overrides(values)
        run_dir = self.study_dir / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("pid", os.getpid())
        callback = PruningCallback(trial, self.config.train.monitor)
        try:
            if run_dir.exists():  # left by a study of the same name that was deleted
                shutil.rmtree(run_dir)
            cfg = config_mod.with_overrides(self.config, overrides)
            result = api.train(cfg, run_dir=run_dir, quiet=None, callbacks=[callback])
        except TrainingInterrupted:
            raise
        except Exception as err:
            self._fail(trial, f"{type(err).__name__}: {err}")
        if callback.pruned:
            raise optuna.TrialPruned(callback.reason)
        if result.best is None or not math.isfinite(result.best):
            self._fail(trial, f"diverged: best valid {self.config.train.monitor} is {result.best}")
        return float(result.best)  # type: ignore[arg-type]  # checked by _fail above

    @staticmethod
    def _fail(trial: optuna.Trial, reason: str) -> Any:
        line = reason.splitlines()[0] if reason else "failed"
        trial.set_user_attr(FAIL_REASON, line)
        raise TrialFailed(line)


class _StopAtTotal:
    """Stop ``optimize`` once the study has ``total`` finished trials (all workers together)."""

    def __init__(self, total: int) -> None:
        self.total = total

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if finished(study) >= self.total:
            study.stop()


def optimize(
    study_name: str,
    storage: str,
    config: ExperimentConfig,
    space: SearchSpace,
    study_dir: Path,
    *,
    total: int,
    n_trials: int,
    sampler: str = "tpe",
    pruner: str | optuna.pruners.BasePruner = "median",
    seed: int | None = 0,
    timeout: float | None = None,
    heartbeat_interval: int = 10,
) -> None:
    """Run up to ``n_trials`` trials of an existing study in this process (one worker)."""
    study = optuna.load_study(
        study_name=study_name,
        storage=open_storage(storage, heartbeat_interval),
        sampler=make_sampler(sampler, seed, space),
        pruner=make_pruner(pruner) if isinstance(pruner, str) else pruner,
    )
    study.optimize(
        Objective(config, space, study_dir),
        n_trials=n_trials,
        timeout=timeout,
        catch=(TrialFailed,),
        callbacks=[_StopAtTotal(total)],
    )
