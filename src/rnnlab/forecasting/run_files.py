"""The files a forecasting run keeps beside its weights: ``scaler.json`` and ``forecast.json``.

Inference needs more than the weights: the scaler fitted on the training rows (to scale new
inputs and unscale forecasts) and the shape of the problem (columns and their roles,
frequency, window sizes, the Gaussian head's interval level)::

    runs/<name>/
      scaler.json      Scaler.to_dict(): names, shift, scale (absent with scaling = "none")
      forecast.json    run_metadata(): format, columns, freq, input_length, horizon, ...

The task writes them when training starts (:meth:`ForecastingTask.prepare_run_dir
<rnnlab.forecasting.task.ForecastingTask.prepare_run_dir>`, called by the trainer), and
:func:`rnnlab.forecasting.predict.load_run` reads them with :func:`read_run_files`.

Example:
    >>> import tempfile
    >>> read_run_files(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rnnlab.errors.RunDirError: ...forecast.json is missing...
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.series import ForecastData, Scaler, SeriesError
from rnnlab.errors import DataError, RunDirError
from rnnlab.forecasting.settings import ForecastingData
from rnnlab.io import atomic_write_text

#: File names a run directory gets from :func:`write_run_files`.
SCALER_FILE = "scaler.json"
META_FILE = "forecast.json"
META_FORMAT = 1


def run_metadata(fd: ForecastData, data: ForecastingData, period: int) -> dict[str, Any]:
    """What inference needs besides the weights: columns, window sizes, frequency.

    Args:
        fd: the prepared (split, scaled, windowed) data of the run.
        data: the run's ``[data]`` section.
        period: the season used by the seasonal-naive baseline and MASE.
    """
    series = fd.series
    return {
        "format": META_FORMAT,
        "time_column": data.time_column,
        "target_names": list(series.target_names),
        "past_names": list(series.past_names),
        "future_names": list(series.future_names),
        "calendar": list(data.calendar),
        "calendar_encoding": data.calendar_encoding,
        "calendar_names": list(series.calendar_names),
        "input_names": list(fd.input_names),
        "freq": series.freq,
        "period": period,
        "input_length": fd.input_length,
        "horizon": fd.horizon,
        "gaussian": data.gaussian,
        "interval_level": data.interval_level,
        "scaled": fd.scaler is not None,
        "last_timestamp": str(series.timestamps[-1]),
    }


def check_saved_scaler(saved: str | os.PathLike[str], fitted: Scaler | None) -> None:
    """On resume: the scaler saved at ``saved`` must match the one fitted now.

    Nothing is checked when there is no saved file or no fitted scaler.

    Raises:
        DataError: the saved file is bad, or the training rows changed since it was written.
    """
    path = Path(saved)
    if fitted is None or not path.is_file():
        return
    try:
        old = Scaler.load(path)
    except SeriesError as err:
        raise DataError(str(err)) from None
    a, b = old.to_dict(), fitted.to_dict()
    same = a["names"] == b["names"] and len(a["shift"]) == len(b["shift"])
    if not (same and np.allclose(a["shift"], b["shift"]) and np.allclose(a["scale"], b["scale"])):
        raise DataError(
            f"the training data changed since {path} was written: its scaler no "
            "longer matches the training rows; start a new run"
        )


def write_run_files(
    run_dir: str | os.PathLike[str], scaler: Scaler | None, metadata: dict[str, Any]
) -> list[Path]:
    """Write ``scaler.json`` (when there is a scaler) and ``forecast.json`` (atomically).

    Returns:
        The paths written.
    """
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if scaler is not None:
        scaler.save(folder / SCALER_FILE)
        written.append(folder / SCALER_FILE)
    atomic_write_text(folder / META_FILE, json.dumps(metadata, indent=2))
    written.append(folder / META_FILE)
    return written


def read_run_files(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], Scaler | None]:
    """The metadata and the scaler (``None`` for an unscaled run) written by
    :func:`write_run_files`.

    Raises:
        RunDirError: a file is missing or not valid.
    """
    folder = Path(run_dir)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise RunDirError(f"{meta_path} is missing: {folder} has no forecasting run files")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RunDirError(f"{meta_path} is not valid JSON: {err}") from None
    scaler = None
    if meta.get("scaled"):
        try:
            scaler = Scaler.load(folder / SCALER_FILE)
        except SeriesError as err:
            raise RunDirError(str(err)) from None
    return meta, scaler
