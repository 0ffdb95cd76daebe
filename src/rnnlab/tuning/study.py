"""Optuna studies over rnnlab configs: samplers, pruners, storage, workers, the objective.

Each trial samples the search space, turns the values into ``--set`` style overrides, and
trains with the same code as ``rnnlab train`` in its own run directory
(``<study dir>/trials/<number>``). The objective is the best validation value of the config's
``train.monitor`` in the direction ``train.monitor_mode``; a :class:`PruningCallback` reports
it after each evaluation so the pruner can stop poor trials early.

Storage is a SQLite file ``<study dir>/study.db`` unless another RDB URL is given, so running
the same command again resumes the study: ``trials`` is the total number of finished trials
wanted (complete, pruned or failed), and only the missing ones run. The storage keeps a
heartbeat for each running trial; a trial whose worker was killed is marked failed once its
heartbeat is ``2 * heartbeat_interval`` seconds old and retried with the same parameters.

Example:
    >>> result = tune("adding", "adding", trials=20, workers=2)          # doctest: +SKIP
    >>> result.best_value, result.best_toml                               # doctest: +SKIP
    (0.0012, PosixPath('runs/studies/adding/best.toml'))
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from rnnlab import api
from rnnlab import config as config_mod
from rnnlab.config import ExperimentConfig
from rnnlab.errors import TrainingInterrupted, UserError
from rnnlab.io import atomic_write_text
from rnnlab.registry import suggest
from rnnlab.tuning import report
from rnnlab.tuning import space as space_mod
from rnnlab.tuning.pruning import PruningCallback
from rnnlab.tuning.space import SearchSpace

SAMPLERS = ("tpe", "random", "cmaes")
PRUNERS = ("median", "hyperband", "halving", "none")
FAIL_REASON = "fail_reason"
SPEC_FILE = "workers.json"


class TuningError(UserError):
    """A bad tuning setting: sampler, pruner, storage, study or worker count."""


class TrialFailed(Exception):  # noqa: N818  (a recorded outcome, caught by study.optimize)
    """A trial raised or diverged; the reason is stored in its ``fail_reason`` user attr."""


@dataclass
class TuneResult:
    """What :func:`tune` returns.

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


# ------------------------------------------------------------------- samplers and pruners


def make_sampler(name: str, seed: int | None, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """A sampler by name: ``tpe`` (default), ``random`` or ``cmaes``.

    Raises:
        TuningError: an unknown name, or ``cmaes`` for a space it does not apply to.
    """
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        others = [p.path for p in space.params if p.kind == "choice" or p.when]
        if others:
            raise TuningError(
                f"sampler 'cmaes' applies to numeric entries without conditions; "
                f"{space.source} has {', '.join(others)} (use tpe or random)"
            )
        if importlib.util.find_spec("cmaes") is None:
            raise TuningError("sampler 'cmaes' needs the cmaes package (pip install cmaes)")
        return optuna.samplers.CmaEsSampler(seed=seed)
    raise TuningError(
        f"unknown sampler {name!r}{suggest(name, SAMPLERS)} (known: tpe, random, cmaes)"
    )


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """A pruner by name: ``median`` (default), ``hyperband``, ``halving`` or ``none``.

    ``median`` prunes a trial whose value at a step is worse than the median of earlier
    trials at that step, after 5 trials have finished; ``halving`` is asynchronous successive
    halving; ``hyperband`` runs several halving brackets. Steps are optimizer steps.

    ``NAME:STEPS`` (e.g. ``median:500``) never prunes before optimizer step ``STEPS``
    (median: ``n_warmup_steps``; halving and hyperband: ``min_resource``). Tasks whose loss
    sits on a plateau before it drops (the adding problem stays at the mean predictor for a
    while, then falls) need it: early values say nothing about which trial will drop.
    """
    base, _, warmup_text = name.partition(":")
    warmup = 0
    if warmup_text:
        if not warmup_text.isdigit():
            raise TuningError(
                f"pruner {name!r}: the part after ':' must be a whole number of steps"
            )
        warmup = int(warmup_text)
    if base == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if base == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warmup or 1)
    if base in ("halving", "successive_halving"):
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup or "auto")
    if base == "none":
        return optuna.pruners.NopPruner()
    raise TuningError(
        f"unknown pruner {name!r}{suggest(name, PRUNERS)} (known: {', '.join(PRUNERS)})"
    )


def default_storage(study_dir: Path) -> str:
    """``sqlite:///<study_dir>/study.db`` (absolute)."""
    return f"sqlite:///{(study_dir / 'study.db').resolve()}"


SCHEMA_RACE_ATTEMPTS = 5


def open_storage(url: str, heartbeat_interval: int = 10) -> RDBStorage:
    """An RDB storage with heartbeats: trials of killed workers are failed, then retried.

    Raises:
        TuningError: a URL the storage cannot open.
    """
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 60}}  # several workers wait on the file lock
    for attempt in range(SCHEMA_RACE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna 5.0
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=2 * heartbeat_interval,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as err:
            # Processes opening a new database together race to create its schema: the
            # loser's insert of the schema version fails, or it reads a table not yet
            # created. A moment later the winner's schema is complete.
            if attempt == SCHEMA_RACE_ATTEMPTS - 1:
                raise TuningError(
                    f"cannot open storage {url!r}: {type(err).__name__}: {err}"
                ) from None
            time.sleep(0.2 * (attempt + 1))
        except Exception as err:  # sqlalchemy's errors: a bad URL, a missing driver, no server
            raise TuningError(f"cannot open storage {url!r}: {type(err).__name__}: {err}") from None
    raise AssertionError("unreachable")


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


# ------------------------------------------------------------------------------ objective


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


# ----------------------------------------------------------------------------------- tune


def tune(
    config: ExperimentConfig | str | os.PathLike[str],
    space: SearchSpace | str | os.PathLike[str],
    *,
    trials: int,
    overrides: Sequence[str] = (),
    study_name: str | None = None,
    study_dir: str | os.PathLike[str] | None = None,
    storage: str | None = None,
    sampler: str = "tpe",
    pruner: str | optuna.pruners.BasePruner = "median",
    seed: int | None = 0,
    workers: int = 1,
    timeout: float | None = None,
    heartbeat_interval: int = 10,
    plots: bool = True,
    verbose: bool = False,
) -> TuneResult:
    """Create or resume a study, run the missing trials, write the outputs.

    Args:
        config: an :class:`ExperimentConfig`, a TOML path or a recipe name.
        space: a :class:`SearchSpace`, a space TOML path or a shipped space name.
        trials: the total number of finished trials the study should have.
        overrides: ``--set`` overrides applied to the base config.
        study_name: default: the recipe or config file name (else the task name).
        study_dir: default ``<output.dir>/studies/<study_name>``.
        storage: an RDB URL; default ``sqlite:///<study_dir>/study.db``.
        sampler: ``tpe`` (seeded with ``seed``), ``random`` or ``cmaes``.
        pruner: a name (see :func:`make_pruner`) or an Optuna pruner (one process only).
        seed: sampler seed; worker ``i`` uses ``seed + i``.
        workers: local processes sharing the storage.
        timeout: seconds after which each worker starts no new trial.
        heartbeat_interval: seconds between heartbeats of a running trial.
        plots: write the plots.
        verbose: let Optuna log one line per trial.

    Returns:
        A :class:`TuneResult`; the study directory holds ``trials.csv``, ``best.toml``,
        ``plots/*.png`` and one run directory per trial.

    Raises:
        UserError: bad config, space, sampler, pruner, storage or settings.
    """
    if trials < 1:
        raise TuningError(f"trials must be at least 1 (got {trials})")
    if workers < 1:
        raise TuningError(f"workers must be at least 1 (got {workers})")
    if workers > 1 and not isinstance(pruner, str):
        raise TuningError("with workers > 1 give the pruner by name")
    if isinstance(config, ExperimentConfig):
        base = config_mod.with_overrides(config, overrides) if overrides else config
        default_name = base.task.name
    else:
        base = config_mod.load(config, overrides)
        default_name = Path(str(config)).stem
    searched = space if isinstance(space, SearchSpace) else space_mod.load(space)
    searched.check_paths(base)
    if searched.fixed:
        base = config_mod.with_overrides(base, searched.fixed)
    name = study_name or default_name
    folder = Path(study_dir) if study_dir is not None else Path(base.output.dir) / "studies" / name
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(folder)
    make_sampler(sampler, seed, searched)  # check the names before any trial runs
    if isinstance(pruner, str):
        make_pruner(pruner)
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    direction: Literal["minimize", "maximize"] = (
        "minimize" if base.train.monitor_mode == "min" else "maximize"
    )
    study = optuna.create_study(
        storage=open_storage(url, heartbeat_interval),
        study_name=name,
        direction=direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise TuningError(
            f"study {name!r} in {url} is to {study.direction.name.lower()}, but "
            f"train.monitor_mode={base.train.monitor_mode!r}; use another --study name"
        )
    study.set_user_attr("monitor", base.train.monitor)
    remaining = trials - finished(study)
    if remaining > 0:
        settings: dict[str, Any] = {
            "total": trials,
            "sampler": sampler,
            "pruner": pruner,
            "timeout": timeout,
            "heartbeat_interval": heartbeat_interval,
        }
        if workers == 1:
            optimize(name, url, base, searched, folder, n_trials=remaining, seed=seed, **settings)
        else:
            _run_workers(name, url, base, searched, folder, remaining, workers, seed, settings)
    return report.write_outputs(
        optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval)),
        base,
        searched,
        folder,
        url,
        plots=plots,
    )


def _run_workers(
    name: str,
    url: str,
    config: ExperimentConfig,
    space: SearchSpace,
    folder: Path,
    remaining: int,
    workers: int,
    seed: int | None,
    settings: dict[str, Any],
) -> None:
    """Start ``workers`` processes (``python -m rnnlab.tuning.worker``) and wait for them."""
    spec = {
        "study_name": name,
        "storage": url,
        "config": config.to_dict(),
        "space": space.raw,
        "space_source": space.source,
        "study_dir": str(folder),
        **settings,
    }
    spec_path = folder / SPEC_FILE
    atomic_write_text(spec_path, json.dumps(spec, indent=1))
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    processes = []
    for index in range(workers):
        share = remaining // workers + (1 if index < remaining % workers else 0)
        if share == 0:
            continue
        worker_seed = "none" if seed is None else str(seed + index)
        command = [sys.executable, "-m", "rnnlab.tuning.worker", str(spec_path)]
        processes.append(subprocess.Popen([*command, str(share), worker_seed], env=env))
    codes = [process.wait() for process in processes]
    bad = [code for code in codes if code != 0]
    if bad:
        raise TuningError(
            f"{len(bad)} of {len(codes)} workers failed (exit codes {bad}); run the same "
            "command again to resume the study"
        )
