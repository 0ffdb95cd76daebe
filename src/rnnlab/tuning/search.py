"""Optuna studies over rnnlab configs: create or resume one, run its trials, write outputs.

``trials`` is the total number of finished trials wanted (complete, pruned or failed), and
only the missing ones run, in this process or in ``workers`` local processes sharing the
storage (:mod:`~rnnlab.tuning.storage`); each trial trains one config
(:mod:`~rnnlab.tuning.trials`). The study directory then holds ``trials.csv``,
``best.toml`` and plots (:mod:`~rnnlab.tuning.outputs`).

Example:
    >>> result = tune("adding", "adding", trials=20, workers=2)          # doctest: +SKIP
    >>> result.best_value, result.best_toml                               # doctest: +SKIP
    (0.0012, PosixPath('runs/studies/adding/best.toml'))
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import optuna

from rnnlab import config as config_mod
from rnnlab.config import ExperimentConfig
from rnnlab.io import atomic_write_text
from rnnlab.tuning import space as space_mod
from rnnlab.tuning.failures import TuningError
from rnnlab.tuning.outputs import write_outputs
from rnnlab.tuning.pruning import make_pruner
from rnnlab.tuning.results import TuneResult, finished
from rnnlab.tuning.samplers import make_sampler
from rnnlab.tuning.space import SearchSpace
from rnnlab.tuning.storage import default_storage, open_storage
from rnnlab.tuning.trials import optimize

SPEC_FILE = "workers.json"


def tune(
    config: ExperimentConfig | str | os.PathLike[str],
    space: SearchSpace | str | os.PathLike[str] | None = None,
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
        space: a :class:`SearchSpace`, a space TOML path or a shipped space name; default
            the shipped space named like the recipe or config file
            (:func:`~rnnlab.tuning.space.default_space`).
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
    if space is None:
        if isinstance(config, ExperimentConfig):
            raise TuningError("give a search space to tune a loaded config")
        space = space_mod.default_space(config)
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
    return write_outputs(
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
