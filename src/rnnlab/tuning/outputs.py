"""What a study leaves: a Rich table, ``trials.csv``, ``best.toml`` and plots.

:func:`write_outputs` writes them at the end of :func:`~rnnlab.tuning.search.tune` and
returns its :class:`~rnnlab.tuning.results.TuneResult`.

Plots (``plots/`` in the study directory, written atomically):

- ``history.png``: each trial's value by trial number (pruned trials at their last reported
  value), and the best value so far;
- ``importance.png``: parameter importances (Optuna's default evaluator);
- ``top_params.png``: the metric against the two most important parameters (one, when the
  space has one).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import optuna
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from rnnlab import config as config_mod
from rnnlab.analysis.plots import save_figure
from rnnlab.config import ExperimentConfig
from rnnlab.io import atomic_write_text
from rnnlab.tuning.failures import FAIL_REASON
from rnnlab.tuning.results import TuneResult
from rnnlab.tuning.space import SearchSpace
from rnnlab.tuning.storage import open_storage


def _reason(trial: FrozenTrial) -> str:
    if FAIL_REASON in trial.user_attrs:
        return str(trial.user_attrs[FAIL_REASON])
    if "failed_trial" in trial.system_attrs:
        return f"retry of trial {trial.system_attrs['failed_trial']}"
    if trial.state == TrialState.FAIL:
        return "worker stopped (no heartbeat)"
    return ""


def _last_value(trial: FrozenTrial) -> float | None:
    if trial.value is not None:
        return float(trial.value)
    if trial.intermediate_values:
        return float(trial.intermediate_values[max(trial.intermediate_values)])
    return None


_STATES = {"complete": "done", "running": "run", "waiting": "wait"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def trials_table(study: optuna.Study, limit: int | None = None) -> Table:
    """A Rich table of the trials: number, state, value, step reached, parameters, note.

    Args:
        study: the study.
        limit: show only the ``limit`` best complete trials (all trials when ``None``).
    """
    trials = study.get_trials(deepcopy=False)
    params = sorted({k for t in trials for k in t.params})
    if limit is not None:
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
        trials = sorted(done, key=lambda t: float(t.value or 0.0), reverse=reverse)[:limit]
    monitor = str(study.user_attrs.get("monitor", "value"))
    table = Table(title=f"study {study.study_name}")
    leaves = [p.rsplit(".", 1)[-1] for p in params]
    headers = [
        leaf if leaves.count(leaf) == 1 else path for leaf, path in zip(leaves, params, strict=True)
    ]
    for column in ("#", "state", monitor, "step", *headers, "note"):
        table.add_column(column, justify="right" if column not in ("state", "note") else "left")
    for trial in trials:
        step = max(trial.intermediate_values) if trial.intermediate_values else None
        table.add_row(
            str(trial.number),
            _STATES.get(trial.state.name.lower(), trial.state.name.lower()),
            _fmt(_last_value(trial)),
            _fmt(step),
            *(_fmt(trial.params.get(p)) for p in params),
            _reason(trial),
        )
    return table


def result_table(result: TuneResult, limit: int | None = None) -> Table:
    """:func:`trials_table` of the study a :func:`~rnnlab.tuning.search.tune` call left
    (read back from its storage)."""
    study = optuna.load_study(study_name=result.study_name, storage=open_storage(result.storage))
    return trials_table(study, limit)


def write_csv(study: optuna.Study, path: Path) -> Path:
    """One row per trial: number, state, value, last step, duration, parameters, reason."""
    import csv
    import io

    trials = study.get_trials(deepcopy=False)
    params = sorted({k for t in trials for k in t.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["number", "state", "value", "last_step", "seconds", *params, "run_dir", "reason"]
    )
    for trial in trials:
        seconds = trial.duration.total_seconds() if trial.duration is not None else ""
        step = max(trial.intermediate_values) if trial.intermediate_values else ""
        value = _last_value(trial)
        writer.writerow(
            [
                trial.number,
                trial.state.name.lower(),
                "" if value is None else repr(value),
                step,
                seconds,
                *(trial.params.get(p, "") for p in params),
                trial.user_attrs.get("run_dir", ""),
                _reason(trial),
            ]
        )
    atomic_write_text(path, buffer.getvalue())
    return path


def best_config(
    study: optuna.Study, base: ExperimentConfig, space: SearchSpace
) -> ExperimentConfig:
    """The base config with the best trial's values: a full config for ``rnnlab train``."""
    best = study.best_trial
    return config_mod.with_overrides(base, space.to_overrides(best.params))


def write_outputs(
    study: optuna.Study,
    base: ExperimentConfig,
    space: SearchSpace,
    folder: Path,
    storage: str,
    *,
    plots: bool = True,
) -> TuneResult:
    """Write ``trials.csv``, ``best.toml`` and the plots; summarize the study."""
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    csv_path = write_csv(study, folder / "trials.csv")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best_toml: Path | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = {}
    if complete:
        best_value = float(study.best_value)
        best_params = dict(study.best_trial.params)
        best_toml = folder / "best.toml"
        config_mod.save(best_config(study, base, space), best_toml)
    written = write_plots(study, space, folder / "plots") if plots else []
    return TuneResult(
        study.study_name,
        storage,
        folder,
        best_value,
        best_params,
        counts,
        csv_path,
        best_toml,
        written,
    )


def write_plots(study: optuna.Study, space: SearchSpace, folder: Path) -> list[Path]:
    """History, importances and metric-vs-top-parameters plots (those the trials allow)."""
    trials = study.get_trials(deepcopy=False)
    monitor = str(study.user_attrs.get("monitor", "value"))
    written = [save_figure(_history(trials, study, monitor), folder / "history.png")]
    importances = param_importances(study)
    if importances:
        fig = Figure(figsize=(5.5, 0.5 + 0.45 * len(importances)))
        ax = fig.add_subplot()
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names], color="tab:blue")
        ax.set_xlabel("importance")
        ax.set_title(f"parameter importances for valid {monitor}")
        written.append(save_figure(fig, folder / "importance.png"))
    top = list(importances)[:2] if importances else [p.path for p in space.params][:2]
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if top and complete:
        written.append(
            save_figure(_top_params(complete, space, top, monitor), folder / "top_params.png")
        )
    return written


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances, or ``{}`` when the trials do not allow them yet."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(complete) < 2:
        return {}
    try:
        with warnings.catch_warnings():  # "few trials in some regimes": expected early on
            warnings.simplefilter("ignore", UserWarning)
            return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):  # no parameter varied among the complete trials
        return {}


def _history(trials: list[FrozenTrial], study: optuna.Study, monitor: str) -> Figure:
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    done = [
        (t.number, float(t.value))
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None
    ]
    pruned = [(t.number, _last_value(t)) for t in trials if t.state == TrialState.PRUNED]
    pruned_points = [(n, v) for n, v in pruned if v is not None and math.isfinite(v)]
    if done:
        ax.scatter(
            [n for n, _ in done], [v for _, v in done], color="tab:blue", s=18, label="complete"
        )
        best: list[float] = []
        for _, value in done:
            best.append(value if not best else (max if maximize else min)(best[-1], value))
        ax.step([n for n, _ in done], best, where="post", color="tab:red", label="best so far")
    if pruned_points:
        ax.scatter(
            [n for n, _ in pruned_points],
            [v for _, v in pruned_points],
            marker="x",
            color="grey",
            s=18,
            label="pruned (last value)",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(f"valid {monitor}")
    ax.set_title(f"optimization history: {study.study_name}")
    if done or pruned_points:
        ax.legend(fontsize=8)
    return fig


def _axis_values(trials: list[FrozenTrial], path: str) -> tuple[list[Any], list[str] | None]:
    values = [t.params[path] for t in trials]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return values, None
    labels = sorted({str(v) for v in values})
    return [labels.index(str(v)) for v in values], labels


def _top_params(
    trials: list[FrozenTrial], space: SearchSpace, top: list[str], monitor: str
) -> Figure:
    kinds = {p.path: p for p in space.params}
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.add_subplot()
    have = [t for t in trials if all(p in t.params for p in top)]
    values = [float(t.value) for t in have if t.value is not None]
    xs, x_labels = _axis_values(have, top[0])
    if len(top) == 2:
        ys, y_labels = _axis_values(have, top[1])
        points = ax.scatter(xs, ys, c=values, cmap="viridis", s=30)
        fig.colorbar(points, ax=ax, label=f"valid {monitor}")
        ax.set_ylabel(top[1])
        _scale(ax, "y", kinds.get(top[1]), y_labels)
    else:
        ax.scatter(xs, values, s=30)
        ax.set_ylabel(f"valid {monitor}")
    ax.set_xlabel(top[0])
    _scale(ax, "x", kinds.get(top[0]), x_labels)
    ax.set_title(f"valid {monitor} against the most important parameters")
    return fig


def _scale(ax: Any, axis: str, param: Any, labels: list[str] | None) -> None:
    log = param is not None and (param.kind == "log_uniform" or param.log)
    if labels is not None:
        ticks = list(range(len(labels)))
        (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks, labels)
    elif log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
