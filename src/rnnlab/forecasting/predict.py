"""Forecast the next steps with a trained run: :func:`forecast` and :func:`load_run`.

``rnnlab forecast RUN_DIR --input recent.csv`` calls :func:`forecast`, which returns a
``pandas.DataFrame``::

    table = forecast("runs/etth1", "recent.csv", out_path="forecast.csv", plot_path="f.png")

What it reads:

- the run's ``config.toml``, ``checkpoints/best.pt`` (``last.pt`` when there is no best,
  :meth:`rnnlab.training.run_dir.RunDir.find_checkpoint`), ``scaler.json`` and
  ``forecast.json`` (:mod:`rnnlab.forecasting.run_files`; when a run lacks them they are
  rebuilt once from the training data named in its config and written there);
- the input file: the same columns as in training (time column, targets and covariates, in
  any order). Its most recent ``input_length`` rows are the history. When the model uses
  known-future covariates from the file, the input must continue with ``horizon`` more rows
  whose target cells are empty and whose future-covariate cells are filled.

What it writes: one row per forecast step with the timestamps (continuing the input on
the training frequency) and each target's forecast in original units, plus
``<target>_lower`` and ``<target>_upper`` (central interval at the run's
``interval_level``) for a Gaussian model; and, with ``plot_path``, the history and the
forecast of each target (:func:`rnnlab.forecasting.plots.plot_forecast`).

Errors (one line, exit code 2 on the command line): a missing run file, an input whose
columns differ from training (the message lists the missing and unexpected ones), too few
rows, non-numeric or missing cells, a horizon longer than the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnlab.data.series import Scaler, SeriesError, calendar_features, series_from_frame
from rnnlab.errors import DataError, RunDirError, UserError
from rnnlab.forecasting.model import prediction_interval
from rnnlab.forecasting.plots import plot_forecast
from rnnlab.forecasting.run_files import META_FILE, read_run_files
from rnnlab.forecasting.task import ForecastingTask
from rnnlab.io import atomic_write_text
from rnnlab.tasks.base import DataSpec
from rnnlab.training.run_dir import RunDir, check_which


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


@dataclass
class _Window:
    """The model's inputs read from an input file, and the history to plot."""

    history: pd.DataFrame  # the last input_length rows, in the file's units
    time_name: str
    stamps: pd.DatetimeIndex  # (H,) the trained horizon's timestamps
    inputs: np.ndarray  # (L, C_in) scaled, calendar features appended
    future: np.ndarray  # (H, C_f) scaled known-future covariates and calendar features


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
        and, for a Gaussian model, ``_lower``/``_upper`` interval bounds.

    Raises:
        UserError: see the module docstring (``DataError``, ``RunDirError``,
            ``CheckpointError``).
    """
    which = check_which(checkpoint)
    task, meta, scaler = load_run(run_dir)
    trained = int(meta["horizon"])
    steps = trained if horizon is None else horizon
    if not 1 <= steps <= trained:
        raise UserError(f"--horizon {steps} is not allowed: this model forecasts 1 to {trained}")
    window = _read_window(Path(input_path), meta, scaler)
    targets = list(meta["target_names"])

    spec = DataSpec(
        num_features=window.inputs.shape[1],
        output_size=len(targets),
        extra={"future_size": window.future.shape[1], "horizon": trained},
    )
    model = task.build_model(spec)
    RunDir(run_dir).load_model(model, which)
    target_device = torch.device(device or "cpu")
    model.to(target_device).eval()
    x = torch.as_tensor(window.inputs, dtype=torch.float32, device=target_device)[None]
    f = torch.as_tensor(window.future, dtype=torch.float32, device=target_device)[None]
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
    if out_path is not None:
        atomic_write_text(Path(out_path), table.to_csv(index=False))
    if plot_path is not None:
        plot_forecast(window.history, table, window.time_name, targets, Path(plot_path))
    return table


def _read_input(path: Path) -> pd.DataFrame:
    """The rows of a CSV/TSV/Parquet input file (a :class:`DataError` when unreadable)."""
    if not path.is_file():
        raise DataError(f"forecast input file not found: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ImportError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot read {path}: {first}") from None


def _read_window(source: Path, meta: dict[str, Any], scaler: Scaler | None) -> _Window:
    """Check the input file against the run's columns and cut the model's inputs from it."""
    length = int(meta["input_length"])
    trained = int(meta["horizon"])
    targets = list(meta["target_names"])
    past = list(meta["past_names"])
    future = list(meta["future_names"])
    columns = targets + past + future

    frame = _read_input(source)
    time_name = meta.get("time_column") or (str(frame.columns[0]) if len(frame.columns) else "")
    found = [str(c) for c in frame.columns]
    expected = [time_name, *columns]
    if set(found) != set(expected):
        missing = [c for c in expected if c not in found]
        unexpected = [c for c in found if c not in expected]
        raise DataError(
            f"the columns of {source} differ from training: missing {missing}, unexpected "
            f"{unexpected} (training columns: {expected})"
        )
    frame = frame[expected]

    # history rows: every target present; trailing rows with empty targets carry the
    # known-future covariates of the horizon
    target_present = frame[targets].notna().all(axis=1).to_numpy()
    last_full = int(np.flatnonzero(target_present)[-1]) if target_present.any() else -1
    history_frame = frame.iloc[: last_full + 1]
    ahead = frame.iloc[last_full + 1 :]
    if len(history_frame) < length:
        raise DataError(
            f"{source} has {len(history_frame)} rows with every target filled; the model "
            f"reads the last input_length={length}"
        )
    history_frame = history_frame.iloc[-length:]
    try:
        history = series_from_frame(
            history_frame,
            time_column=time_name,
            targets=targets,
            past_covariates=past,
            future_covariates=future,
            calendar=meta["calendar"],
            calendar_encoding=meta["calendar_encoding"],
            source=str(source),
        )
    except SeriesError as err:
        raise DataError(str(err)) from None
    stamps = _future_timestamps(history.timestamps, meta.get("freq"), trained, source)

    values = history.values  # (L, C) original units, columns = targets + past + future
    scaled = scaler.transform(values, columns) if scaler is not None else values
    inputs = np.concatenate([scaled, history.calendar], axis=1)  # (L, C_in)
    known = _known_future(ahead, future, trained, source, scaler)  # (H, C_file_future)
    calendar = calendar_features(stamps, meta["calendar"], meta["calendar_encoding"])[0]
    future_inputs = np.concatenate([known, calendar], axis=1)  # (H, C_f)
    return _Window(history_frame, time_name, stamps, inputs, future_inputs)


def _future_timestamps(
    history: pd.DatetimeIndex, freq: str | None, steps: int, source: Path
) -> pd.DatetimeIndex:
    if freq is None:
        raise DataError(
            f"the training series had no regular frequency, so the forecast timestamps after "
            f"{source} cannot be generated"
        )
    return pd.date_range(history[-1], periods=steps + 1, freq=freq)[1:]


def _known_future(
    ahead: pd.DataFrame, names: list[str], steps: int, source: Path, scaler: Scaler | None
) -> np.ndarray:
    """``(H, C)`` scaled known-future covariates from the rows after the history."""
    if not names:
        return np.zeros((steps, 0))
    if len(ahead) < steps:
        raise DataError(
            f"the model uses known-future covariates {names}: {source} must continue with "
            f"{steps} rows after the history (targets empty), found {len(ahead)}"
        )
    rows = ahead.iloc[:steps][names]
    try:
        values = rows.apply(pd.to_numeric, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise DataError(f"non-numeric future covariate in {source}: {err}") from None
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"missing future covariate value in {source} at row {int(rows.index[bad])}")
    return scaler.transform(values, names) if scaler is not None else values


__all__ = ["forecast", "load_run"]
