"""Forecast the next steps with a trained run: :func:`forecast` and :func:`load_run`.

``rnnlab forecast RUN_DIR --input recent.csv`` calls :func:`forecast`, which returns a
``pandas.DataFrame``::

    table = forecast("runs/etth1", "recent.csv", out_path="forecast.csv", plot_path="f.png")
    for notice in table.attrs["notices"]:
        print("notice:", notice)

What it reads:

- the run's ``config.toml`` (its ``data.fill`` is the fill policy for the input),
  ``checkpoints/best.pt`` (``last.pt`` when there is no best,
  :meth:`rnnlab.training.run_dir.RunDir.find_checkpoint`), ``scaler.json`` and
  ``forecast.json`` (:mod:`rnnlab.forecasting.run_files`; when a run lacks them they are
  rebuilt once from the training data named in its config and written there);
- the input file: at least the columns the run uses (time column, targets and covariates,
  in any order; other columns are ignored with a notice). Its most recent ``input_length``
  steps are the history; missing timestamps and cells among them are filled by the run's
  ``data.fill`` (with a notice) or refused when the run does not fill. When the model uses
  known-future covariates from the file, the input must continue with exactly ``horizon``
  more rows whose target cells are empty and whose future-covariate cells are filled
  (:mod:`rnnlab.forecasting.recent_rows` has the details).

What it writes: one row per forecast step with the timestamps (continuing the input's last
row on the training frequency) and each target's forecast in original units, plus
``<target>_lower`` and ``<target>_upper`` (central interval at the run's
``interval_level``) for a Gaussian model; and, with ``plot_path``, the history and the
forecast of each target (:func:`rnnlab.forecasting.plots.plot_forecast`). ``out_path`` and
``plot_path`` must be file paths: both are checked before anything is read or written, and
folders that do not exist yet are created (as for every file rnnlab writes). What was done
to the input (columns ignored, values filled) is in ``table.attrs["notices"]`` (a list of
sentences, empty when nothing was done).

Errors (one line, exit code 2 on the command line): a missing run file, an input that lacks
a column of training, too few rows, non-numeric cells, missing cells or timestamps that the
run does not fill, a horizon longer than the model's, an output path that is a directory or
lies under a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnlab.data.series import Scaler
from rnnlab.errors import RunDirError, UserError
from rnnlab.forecasting.model import prediction_interval
from rnnlab.forecasting.plots import plot_forecast
from rnnlab.forecasting.recent_rows import Window, read_window, window_from_frame
from rnnlab.forecasting.run_files import META_FILE, read_run_files
from rnnlab.forecasting.task import ForecastingTask
from rnnlab.io import atomic_write_text
from rnnlab.tasks.base import DataSpec
from rnnlab.training.run_dir import RunDir, Which, check_which


def load_run(run_dir: str | Path) -> tuple[ForecastingTask, dict[str, Any], Scaler | None]:
    """The task, the run metadata and the scaler of a forecasting run directory.

    The run files are rebuilt from the training data named in the config (and written into
    the run) when the run lacks them.

    Raises:
        RunDirError: not a run directory, or not a forecasting run.
    """
    run = RunDir(run_dir).require()
    cfg = run.config()
    if cfg.task.name != "forecasting":
        raise RunDirError(
            f"{run.path} is a run of task {cfg.task.name!r}; rnnlab forecast needs a "
            "'forecasting' run"
        )
    task = ForecastingTask(cfg)
    if not (run.path / META_FILE).is_file():
        task.write_run_files(run.path)  # rebuilt from the training data named in the config
    meta, scaler = read_run_files(run.path)
    return task, meta, scaler


def forecast(
    run_dir: str | Path,
    input_path: str | Path,
    *,
    horizon: int | None = None,
    out_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    checkpoint: str = "best",
    device: str | None = None,
) -> pd.DataFrame:
    """Forecast from the most recent rows of ``input_path`` with the model of ``run_dir``.

    Args:
        run_dir: a run directory of the ``forecasting`` task.
        input_path: a CSV/TSV/Parquet file with the training columns.
        horizon: steps to forecast (default, and at most, the trained horizon).
        out_path: write the forecast table there as CSV (atomically).
        plot_path: draw history and forecast there (PNG, PDF, SVG by suffix).
        checkpoint: ``best`` (falls back to ``last``) or ``last``.
        device: where to run the model (default CPU).

    Returns:
        The forecast table: the time column, then per target its forecast (original units)
        and, for a Gaussian model, ``_lower``/``_upper`` interval bounds;
        ``table.attrs["notices"]`` lists what was done to the input (ignored columns, filled
        values and timestamps).

    Raises:
        UserError: see the module docstring (``DataError``, ``RunDirError``,
            ``CheckpointError``).
    """
    which = check_which(checkpoint)
    outputs = check_output_paths(input_path, out_path, plot_path)
    task, meta, scaler = load_run(run_dir)
    steps = check_horizon(meta, horizon)
    window = read_window(Path(input_path), meta, scaler, task.data_config.fill)
    model = build_model(task, meta, run_dir, which, torch.device(device or "cpu"))
    table = forecast_window(model, window, meta, scaler, steps)
    out, plot = outputs
    try:
        if out is not None:
            atomic_write_text(out, table.to_csv(index=False))
        if plot is not None:
            plot_forecast(window.history, table, window.time_name, list(meta["target_names"]), plot)
    except OSError as err:
        raise UserError(f"cannot write {err.filename or out}: {err.strerror or err}") from None
    return table


def check_horizon(meta: dict[str, Any], horizon: int | None) -> int:
    """The steps to forecast: ``horizon``, or the trained horizon when it is ``None``.

    Raises:
        UserError: ``horizon`` is not an integer from 1 to the trained horizon.
    """
    trained = int(meta["horizon"])
    steps = trained if horizon is None else horizon
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= trained:
        raise UserError(f"--horizon {steps} is not allowed: this model forecasts 1 to {trained}")
    return steps


def build_model(
    task: ForecastingTask,
    meta: dict[str, Any],
    run_dir: str | Path,
    which: Which,
    device: torch.device,
) -> torch.nn.Module:
    """The run's model with the weights of checkpoint ``which``, on ``device``, in eval mode.

    Its sizes come from the run's metadata (``forecast.json``: the input columns, the
    known-future columns and calendar features, the trained horizon).

    Raises:
        CheckpointError: the checkpoint is missing or does not fit.
    """
    spec = DataSpec(
        num_features=len(meta["input_names"]),
        output_size=len(meta["target_names"]),
        extra={
            "future_size": len(meta["future_names"]) + len(meta["calendar_names"]),
            "horizon": int(meta["horizon"]),
        },
    )
    model = task.build_model(spec)
    RunDir(run_dir).load_model(model, which)
    return model.to(device).eval()


def forecast_window(
    model: torch.nn.Module,
    window: Window,
    meta: dict[str, Any],
    scaler: Scaler | None,
    steps: int,
) -> pd.DataFrame:
    """The forecast table of ``steps`` steps after ``window`` (see :func:`forecast`), with
    ``table.attrs["notices"]`` from the window."""
    targets = list(meta["target_names"])
    device = next(model.parameters()).device
    x = torch.as_tensor(window.inputs, dtype=torch.float32, device=device)[None]
    f = torch.as_tensor(window.future, dtype=torch.float32, device=device)[None]
    with torch.no_grad():
        output = model(x, f)  # (1, H, C_out), or (mean, variance)
    mean, variance = output if isinstance(output, tuple) else (output, None)

    def original(z: torch.Tensor) -> np.ndarray:
        array = z[0, :steps].detach().cpu().double().numpy()  # (steps, C_out)
        return scaler.inverse_transform(array, targets) if scaler is not None else array

    table = pd.DataFrame({window.time_name: window.stamps[:steps]})
    point = original(mean)
    bounds = None
    if variance is not None:
        lower, upper = prediction_interval(mean, variance, float(meta["interval_level"]))
        bounds = (original(lower), original(upper))
    for j, name in enumerate(targets):
        table[name] = point[:, j]
        if bounds is not None:
            table[f"{name}_lower"] = bounds[0][:, j]
            table[f"{name}_upper"] = bounds[1][:, j]
    table.attrs["notices"] = list(window.notices)
    return table


@dataclass
class Forecaster:
    """A forecasting run loaded once, for forecasts from rows held in memory (a server's).

    Example (a trained run in ``runs/etth1``)::

        forecaster = load_forecaster("runs/etth1")
        table = forecaster.forecast_frame(pd.read_csv("recent.csv"), horizon=24)
    """

    task: ForecastingTask
    meta: dict[str, Any]
    scaler: Scaler | None
    model: torch.nn.Module
    run_dir: Path
    checkpoint: Path

    @property
    def columns(self) -> list[str]:
        """The value columns the input rows must have (targets, then covariates), besides
        the time column (``meta["time_column"]``; ``None``: the rows' first column)."""
        meta = self.meta
        return [*meta["target_names"], *meta["past_names"], *meta["future_names"]]

    def forecast_frame(
        self, frame: pd.DataFrame, *, horizon: int | None = None, source: str = "the input rows"
    ) -> pd.DataFrame:
        """:func:`forecast` from rows in memory: the same checks, fill policy and table.

        Args:
            frame: the recent rows (the time column may hold strings).
            horizon: steps to forecast (default, and at most, the trained horizon).
            source: what the rows are called in notices and errors.

        Raises:
            UserError: a horizon out of range; ``DataError``: rows the run cannot use.
        """
        steps = check_horizon(self.meta, horizon)
        fill = self.task.data_config.fill
        window = window_from_frame(frame, source, self.meta, self.scaler, fill)
        return forecast_window(self.model, window, self.meta, self.scaler, steps)


def load_forecaster(
    run_dir: str | Path, checkpoint: str = "best", device: str | None = None
) -> Forecaster:
    """Load a forecasting run once (task, run files, model) for many forecasts.

    Raises:
        UserError: a bad ``checkpoint``; ``RunDirError``/``CheckpointError``: see
            :func:`load_run` and :func:`build_model`.
    """
    which = check_which(checkpoint)
    task, meta, scaler = load_run(run_dir)
    path = RunDir(run_dir).find_checkpoint(which)
    model = build_model(task, meta, run_dir, which, torch.device(device or "cpu"))
    return Forecaster(task, meta, scaler, model, Path(run_dir), path)


#: Image formats ``plot_path`` may end with (no suffix: PNG).
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps")


def check_output_paths(
    input_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None,
    plot_path: str | os.PathLike[str] | None,
) -> tuple[Path | None, Path | None]:
    """The forecast and plot paths, checked before anything is read or written.

    A folder in a path that does not exist yet is fine (it is created when writing).

    Raises:
        UserError: a path is an existing directory, lies under an existing file, names the
            input file or the other output, or (the plot) has an unknown image suffix.
    """
    out = None if out_path is None else Path(out_path)
    plot = None if plot_path is None else Path(plot_path)
    for path, option, example in ((out, "--out", "forecast.csv"), (plot, "--plot", "forecast.png")):
        if path is None:
            continue
        if path.is_dir():
            raise UserError(
                f"{option} {path} is a directory; expected a file path (e.g. {path / example})"
            )
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise UserError(f"{option} {path} cannot be written: {blocker} is a file, not a folder")
        if path.exists() and path.resolve() == Path(input_path).resolve():
            raise UserError(f"{option} {path} is the input file; choose another path")
    if plot is not None and plot.suffix and plot.suffix.lower() not in PLOT_SUFFIXES:
        raise UserError(
            f"--plot {plot}: unknown image type {plot.suffix!r} (use one of "
            f"{', '.join(PLOT_SUFFIXES)})"
        )
    if out is not None and plot is not None and out.resolve() == plot.resolve():
        raise UserError(f"--out and --plot name the same file {out}; give two paths")
    return out, plot


__all__ = [
    "PLOT_SUFFIXES",
    "Forecaster",
    "build_model",
    "check_horizon",
    "check_output_paths",
    "forecast",
    "forecast_window",
    "load_forecaster",
    "load_run",
]
