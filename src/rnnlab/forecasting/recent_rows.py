"""The recent rows a forecast starts from: read the input file, check it against the run, and
cut the model's inputs from it (:func:`read_window`, used by
:func:`rnnlab.forecasting.predict.forecast`).

What is accepted, and what happens to it:

- **columns**: every column the run uses (the time column, targets and covariates, in any
  order) must be there; other columns (the training CSV's own format, when the run used only
  some of them) are ignored, with a notice naming them.
- **known-future rows**: when the model reads known-future covariates from the file, the
  input ends with exactly ``horizon`` rows whose targets are all empty; their timestamps must
  continue the history on the training frequency. More trailing rows without targets than
  that is ambiguous (a missing last target, or extra future rows) and refused.
- **history**: every row before those (all rows when there are no known-future covariates).
  Missing timestamps on the training frequency are inserted as empty rows, so the model reads
  its last ``input_length`` *steps*; missing cells (the last row's target included) and
  inserted rows among those steps are filled with the run's fill policy (``data.fill`` of the
  training config: ``ffill`` or ``interpolate``), each with a notice naming the timestamps
  and how they were filled; when the run does not fill (``data.fill`` unset) they are refused
  with one line saying what is missing and how to fix it. The forecast continues from the
  last row of the file's history: never from an earlier one.

Notices are sentences starting with the file name; errors are :class:`DataError`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnlab.data.series import (
    Scaler,
    SeriesError,
    calendar_features,
    numeric_column,
    series_from_frame,
    to_grid,
)
from rnnlab.errors import DataError

#: At most this many timestamps are named in one message (then "and N more").
NAMED_STAMPS = 3


@dataclass
class Window:
    """The model's inputs read from an input file, the history to plot, and the notices."""

    history: pd.DataFrame  # the time column and the targets of the rows the model reads
    time_name: str
    stamps: pd.DatetimeIndex  # (H,) the trained horizon's timestamps
    inputs: np.ndarray  # (L, C_in) scaled, calendar features appended
    future: np.ndarray  # (H, C_f) scaled known-future covariates and calendar features
    notices: list[str] = field(default_factory=list)


def read_input(path: Path) -> pd.DataFrame:
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


def read_csv_text(text: str, source: str = "the request CSV") -> pd.DataFrame:
    """The rows of CSV text held in memory (a :class:`DataError` naming ``source`` when it
    cannot be parsed).

    Example:
        >>> read_csv_text("time,y\\n2022-03-01 00:00,1.5\\n").shape
        (1, 2)
    """
    try:
        return pd.read_csv(io.StringIO(text))
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot read {source}: {first}") from None


def read_window(
    source: Path, meta: dict[str, Any], scaler: Scaler | None, fill: str | None
) -> Window:
    """Check the input file against the run's columns and cut the model's inputs from it.

    Args:
        source: the input file.
        meta: the run's ``forecast.json`` (:mod:`rnnlab.forecasting.run_files`).
        scaler: the run's scaler (``None`` for an unscaled run).
        fill: the run's fill policy (``data.fill``): ``None``, ``"ffill"`` or
            ``"interpolate"``.

    Raises:
        DataError: see the module docstring.
    """
    return window_from_frame(read_input(source), source, meta, scaler, fill)


def window_from_frame(
    frame: pd.DataFrame,
    source: str | Path,
    meta: dict[str, Any],
    scaler: Scaler | None,
    fill: str | None,
) -> Window:
    """:func:`read_window` for rows already in memory (a server's JSON rows or CSV text).

    Args:
        frame: the rows, as read from a file (the time column may hold strings).
        source: what the rows are called in notices and errors (a file path, or a label such
            as ``"the request rows"``).
        meta, scaler, fill: as for :func:`read_window`.

    Raises:
        DataError: see the module docstring.
    """
    source = Path(source)
    length, trained = int(meta["input_length"]), int(meta["horizon"])
    targets, past = list(meta["target_names"]), list(meta["past_names"])
    future = list(meta["future_names"])
    columns = targets + past + future
    name = source.name

    time_name = meta.get("time_column") or (str(frame.columns[0]) if len(frame.columns) else "")
    frame, notices = _used_columns(frame, [time_name, *columns], source)
    history_rows, ahead = _split_ahead(frame, targets, future, trained, time_name, source)
    history_rows = _numeric(history_rows, columns, source)
    try:
        if meta.get("freq") is None:  # no grid: the timestamps error comes below
            grid, inserted = history_rows, np.zeros(len(history_rows), dtype=bool)
            file_rows = np.arange(len(history_rows))
        else:
            rows = to_grid(history_rows, time_name, str(meta["freq"]), str(source))
            grid, file_rows = rows.frame, rows.file_rows
            inserted = file_rows < 0
    except SeriesError as err:
        raise DataError(str(err)) from None
    if len(grid) < length:
        raise DataError(
            f"{source} has {len(grid)} rows of history (up to the last row with targets); the "
            f"model reads the last input_length={length}"
        )
    last = len(history_rows) - 1
    notices += _missing(grid.iloc[-length:], file_rows[-length:], inserted[-length:],
                        targets, columns, time_name, last, name, fill)  # fmt: skip
    try:
        history = series_from_frame(
            grid if fill is not None else grid.iloc[-length:],
            time_column=time_name,
            targets=targets,
            past_covariates=past,
            future_covariates=future,
            calendar=meta["calendar"],
            calendar_encoding=meta["calendar_encoding"],
            fill=fill,  # type: ignore[arg-type]
            source=str(source),
        )
    except SeriesError as err:
        raise DataError(str(err)) from None
    stamps = _future_timestamps(history.timestamps, meta.get("freq"), trained, source)

    values = history.values[-length:]  # (L, C) original units, columns = targets+past+future
    scaled = scaler.transform(values, columns) if scaler is not None else values
    inputs = np.concatenate([scaled, history.calendar[-length:]], axis=1)  # (L, C_in)
    known = _known_future(ahead, future, stamps, time_name, source, scaler)  # (H, C_file_f)
    calendar = calendar_features(stamps, meta["calendar"], meta["calendar_encoding"])[0]
    future_inputs = np.concatenate([known, calendar], axis=1)  # (H, C_f)
    plotted = pd.DataFrame(values[:, : len(targets)], columns=targets)
    plotted.insert(0, time_name, history.timestamps[-length:])
    return Window(plotted, time_name, stamps, inputs, future_inputs, notices)


def _used_columns(
    frame: pd.DataFrame, expected: list[str], source: Path
) -> tuple[pd.DataFrame, list[str]]:
    """The run's columns of ``frame`` (in ``expected`` order), and a notice for the others."""
    found = [str(c) for c in frame.columns]
    frame = frame.set_axis(found, axis=1)
    missing = [c for c in expected if c not in found]
    if missing:
        raise DataError(
            f"the columns of {source} differ from training: missing {missing} (training "
            f"columns: {expected}; columns found: {found})"
        )
    ignored = [c for c in found if c not in expected]
    notices = []
    if ignored:
        notices.append(
            f"{source.name}: ignored the columns {ignored} (the run does not use them; it "
            f"reads {expected})"
        )
    return frame[expected].reset_index(drop=True), notices


def _split_ahead(
    frame: pd.DataFrame,
    targets: list[str],
    future: list[str],
    steps: int,
    time_name: str,
    source: Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The history rows and the known-future rows after them (none without future covariates)."""
    if not future:
        return frame, frame.iloc[:0]
    empty = frame[targets].isna().all(axis=1).to_numpy()
    trailing = len(empty) - (int(np.flatnonzero(~empty)[-1]) + 1 if (~empty).any() else 0)
    if trailing < steps:
        raise DataError(
            f"the model uses known-future covariates {future}: {source} must continue with "
            f"{steps} rows after the history (targets empty), found {trailing}"
        )
    if trailing > steps:
        extra = frame[time_name].iloc[len(frame) - trailing : len(frame) - steps]
        raise DataError(
            f"{source.name}: the last {trailing} rows have no target value, but the model reads "
            f"exactly {steps} rows of known-future covariates after the history: either the "
            f"targets are missing at {_list(extra)} (give them) or there are {trailing - steps} "
            "future rows too many (drop them)"
        )
    return frame.iloc[:-steps], frame.iloc[-steps:]


def _numeric(frame: pd.DataFrame, columns: list[str], source: Path) -> pd.DataFrame:
    """``frame`` with ``columns`` as floats; a non-numeric or infinite cell is an error
    naming its row (the series loader's own rule)."""
    frame = frame.copy()
    for name in columns:
        try:
            frame[name] = numeric_column(frame[name], name, str(source))
        except SeriesError as err:
            raise DataError(str(err)) from None
    return frame


def _missing(
    window: pd.DataFrame,
    file_rows: np.ndarray,
    inserted: np.ndarray,
    targets: list[str],
    columns: list[str],
    time_name: str,
    last: int,
    name: str,
    fill: str | None,
) -> list[str]:
    """Notices for what the fill policy fills in the rows the model reads, or the refusal."""
    stamps = pd.DatetimeIndex(window[time_name])
    how = f"filled with {fill} (the run's data.fill)"
    refuse = "the run does not fill gaps (data.fill is unset)"
    retrain = 'train with data.fill = "ffill"'
    notices = []
    if inserted.any():
        count = int(inserted.sum())
        what = (
            f"{count} timestamp{'s are' if count > 1 else ' is'} missing: {_list(stamps[inserted])}"
        )
        if fill is None:
            raise DataError(f"{name}: {what}; {refuse}: add the rows or {retrain}")
        notices.append(f"{name}: {what}; inserted as rows and {how}")
    cells = window[columns].isna().to_numpy() & ~inserted[:, None]  # (L, C)
    for j, column in enumerate(columns):
        rows = np.flatnonzero(cells[:, j])
        if rows.size == 0:
            continue
        role = "target" if column in targets else "covariate"
        where = _list(stamps[rows], [_row(int(file_rows[i]), last) for i in rows])
        if fill is None:
            raise DataError(
                f"{name}: the {role} {column!r} is missing at {where}; {refuse}: give the value "
                f"or {retrain}"
            )
        notices.append(f"{name}: the {role} {column!r} was missing at {where}; {how}")
    return notices


def _row(row: int, last: int) -> str:
    return "the last row" if row == last else f"row {row}"


def _stamp(stamp: pd.Timestamp) -> str:
    """``2016-07-01 05:00`` (seconds only when there are any)."""
    if stamp.second or stamp.microsecond or stamp.nanosecond:
        return str(stamp)
    return stamp.strftime("%Y-%m-%d %H:%M")


def _list(stamps: Any, rows: list[str] | None = None) -> str:
    """The first :data:`NAMED_STAMPS` timestamps (with their rows), then "and N more"."""
    named = [_stamp(pd.Timestamp(s)) for s in list(stamps)[:NAMED_STAMPS]]
    if rows is not None:
        named = [f"{s} ({r})" for s, r in zip(named, rows, strict=False)]
    more = len(stamps) - len(named)
    return ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _same(given: Any, expected: pd.Timestamp) -> bool:
    try:
        return bool(given == expected)
    except TypeError:  # one with a time zone, the other without
        return False


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
    ahead: pd.DataFrame,
    names: list[str],
    stamps: pd.DatetimeIndex,
    time_name: str,
    source: Path,
    scaler: Scaler | None,
) -> np.ndarray:
    """``(H, C)`` scaled known-future covariates from the rows after the history."""
    if not names:
        return np.zeros((len(stamps), 0))
    given = [pd.to_datetime(t, errors="coerce") for t in ahead[time_name]]
    wrong = [i for i, (a, b) in enumerate(zip(given, stamps, strict=True)) if not _same(a, b)]
    if wrong:
        i = wrong[0]
        at = _stamp(given[i])
        what = f"start at {at}" if i == 0 else f"have {at} at step {i + 1}"
        raise DataError(
            f"{source.name}: the known-future rows {what} but the forecast starts at "
            f"{_stamp(stamps[0])} (one step after the last row with targets); they must be the "
            f"{len(stamps)} steps {_stamp(stamps[0])} .. {_stamp(stamps[-1])}"
        )
    rows = ahead[names]
    try:
        values = rows.apply(pd.to_numeric, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise DataError(f"non-numeric future covariate in {source}: {err}") from None
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"missing future covariate value in {source} at row {int(rows.index[bad])}")
    return scaler.transform(values, names) if scaler is not None else values


__all__ = [
    "NAMED_STAMPS",
    "Window",
    "read_csv_text",
    "read_input",
    "read_window",
    "window_from_frame",
]
