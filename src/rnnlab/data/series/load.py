"""Load a time series from CSV or Parquet into a checked, numeric :class:`TimeSeries`.

A file is one table: a timestamp column and numeric value columns. Each value column plays
one role:

- **targets**: the columns to forecast (one or many);
- **past covariates**: observed up to the forecast origin only (inputs, never future);
- **future covariates**: known ahead (a planned price, a holiday flag); their values over
  the horizon may be fed to the model;
- **calendar features**, derived from the timestamps, are known-future covariates too.

Checks, each a :class:`SeriesError` (a ``ValueError``) with a one-line message:

- missing file, unknown column (the message lists the columns found), unparsable timestamp,
  non-numeric or infinite cell (column, row and value are named);
- unsorted timestamps: an error by default; with ``sort=True`` the rows are sorted (stable)
  and a notice is added to ``series.report.notices`` (and logged at INFO level);
- duplicate timestamps: always an error (aggregate them yourself first);
- missing values: an error by default naming the column and the first bad row; with
  ``fill="ffill"`` each gap takes the last observed value, with ``fill="interpolate"`` a
  straight line between the two observed neighbours (by row position). With either, values
  before the first observation take the first observed value (and, for ``interpolate``,
  values after the last take the last one); the counts go to ``report.filled``.

Rows are numbered as pandas numbers them: ``row 0`` is the first data row after the header
(file line 2 of a CSV), and row numbers in messages are always those of the file, before any
sorting. Gaps in the timestamps (missing rows, as opposed to missing cells) are reported in
``report.gaps`` and left as they are.

Example:
    >>> series = load_series("ETTh1.csv", targets=["OT"], past_covariates=["HUFL", "HULL"],
    ...                      calendar=["hour", "dayofweek"])  # doctest: +SKIP
    >>> series.freq, series.values.shape, series.calendar_names  # doctest: +SKIP
    ('h', (17420, 3), ('hour_sin', 'hour_cos', 'dayofweek_sin', 'dayofweek_cos'))
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from rnnlab.data.series.calendar import CalendarEncoding, calendar_features
from rnnlab.data.series.errors import SeriesError

logger = logging.getLogger(__name__)

Fill = Literal["ffill", "interpolate"]

_CSV_SUFFIXES = {".csv": ",", ".txt": ",", ".tsv": "\t"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass
class SeriesReport:
    """What loading found and changed.

    Attributes:
        source: the file (or ``"<frame>"``) the series came from.
        rows: number of rows.
        gaps: runs of missing timestamps on the inferred frequency grid, as
            ``(first missing timestamp, number missing)``; empty when regular or unknown.
        filled: missing cells filled per column (only with ``fill``).
        notices: other things done, in words (sorting, an irregular frequency).
    """

    source: str
    rows: int
    gaps: list[tuple[str, int]] = field(default_factory=list)
    filled: dict[str, int] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def missing_timestamps(self) -> int:
        """Total number of timestamps missing from the frequency grid."""
        return sum(count for _, count in self.gaps)


@dataclass(frozen=True)
class TimeSeries:
    """A checked numeric series with named roles for its columns.

    Attributes:
        values: ``(T, C)`` float64, columns in the order ``target_names + past_names +
            future_names``.
        target_names: the columns to forecast (first in ``values``).
        past_names: past-observed covariates.
        future_names: known-future covariates taken from the file.
        calendar: ``(T, K)`` float64 calendar features (already in ``[-1, 1]``; not scaled).
        calendar_names: e.g. ``("hour_sin", "hour_cos")``.
        timestamps: the sorted timestamps.
        freq: the inferred frequency as a pandas alias (``"h"``, ``"15min"``, ``"MS"``...), or
            ``None`` when it could not be inferred.
        report: what loading found and changed.
    """

    values: np.ndarray
    target_names: tuple[str, ...]
    past_names: tuple[str, ...]
    future_names: tuple[str, ...]
    calendar: np.ndarray
    calendar_names: tuple[str, ...]
    timestamps: pd.DatetimeIndex
    freq: str | None
    report: SeriesReport

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def value_names(self) -> tuple[str, ...]:
        """Names of the columns of ``values``."""
        return self.target_names + self.past_names + self.future_names

    @property
    def targets(self) -> np.ndarray:
        """``(T, C_out)`` the target columns."""
        return self.values[:, : len(self.target_names)]


def load_series(
    path: str | Path,
    *,
    time_column: str | None = None,
    targets: str | Sequence[str] | None = None,
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    calendar: Sequence[str] = (),
    calendar_encoding: CalendarEncoding = "sincos",
    fill: Fill | None = None,
    sort: bool = False,
) -> TimeSeries:
    """Read a CSV (``.csv``, ``.txt``, ``.tsv``) or Parquet file and check it.

    Args:
        path: the file. Parquet needs ``pyarrow`` installed.
        time_column: the timestamp column; the first column when omitted.
        targets: the column(s) to forecast; every column that is neither the time column nor
            a covariate when omitted.
        past_covariates: columns observed up to the forecast origin only.
        future_covariates: columns known over the horizon.
        calendar: calendar features to derive from the timestamps, names from
            :data:`~rnnlab.data.series.calendar.CALENDAR_FEATURES` (``hour``, ``month``...).
        calendar_encoding: ``"sincos"`` (two columns per feature) or ``"scaled"`` (one, in
            ``[-0.5, 0.5]``).
        fill: ``None`` (missing values are an error), ``"ffill"`` or ``"interpolate"``.
        sort: sort unsorted timestamps (with a notice) instead of raising.

    Returns:
        The :class:`TimeSeries`.

    Raises:
        SeriesError: on any of the problems listed in the module docstring.
    """
    path = Path(path)
    if not path.is_file():
        raise SeriesError(f"series file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in _CSV_SUFFIXES:
            frame = pd.read_csv(path, sep=_CSV_SUFFIXES[suffix])
        elif suffix in _PARQUET_SUFFIXES:
            try:
                import pyarrow  # noqa: F401
            except ImportError as exc:
                raise SeriesError(
                    f"reading Parquet ({path}) needs pyarrow: pip install pyarrow"
                ) from exc
            frame = pd.read_parquet(path)
        else:
            known = sorted([*_CSV_SUFFIXES, *_PARQUET_SUFFIXES])
            raise SeriesError(
                f"unknown series file type {suffix!r} for {path}; expected one of {known}"
            )
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SeriesError(f"cannot read {path}: {first_line}") from exc
    return series_from_frame(
        frame,
        time_column=time_column,
        targets=targets,
        past_covariates=past_covariates,
        future_covariates=future_covariates,
        calendar=calendar,
        calendar_encoding=calendar_encoding,
        fill=fill,
        sort=sort,
        source=str(path),
    )


def series_from_frame(
    frame: pd.DataFrame,
    *,
    time_column: str | None = None,
    targets: str | Sequence[str] | None = None,
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    calendar: Sequence[str] = (),
    calendar_encoding: CalendarEncoding = "sincos",
    fill: Fill | None = None,
    sort: bool = False,
    source: str = "<frame>",
) -> TimeSeries:
    """Check a ``pandas.DataFrame`` as :func:`load_series` checks a file (same arguments)."""
    if fill not in (None, "ffill", "interpolate"):
        raise SeriesError(f"fill must be None, 'ffill' or 'interpolate', got {fill!r}")
    if calendar_encoding not in ("sincos", "scaled"):
        raise SeriesError(
            f"calendar_encoding must be 'sincos' or 'scaled', got {calendar_encoding!r}"
        )
    frame = frame.rename(columns=str).reset_index(drop=True)
    columns = list(frame.columns)
    if not columns:
        raise SeriesError(f"{source} has no columns")
    time_name = columns[0] if time_column is None else time_column
    past = list(past_covariates)
    future = list(future_covariates)
    if targets is None:
        target_list = [c for c in columns if c != time_name and c not in past and c not in future]
        if not target_list:
            raise SeriesError(f"{source} has no target column left; columns found: {columns}")
    else:
        target_list = [targets] if isinstance(targets, str) else list(targets)
        if not target_list:
            raise SeriesError("targets must name at least one column, got an empty list")
    for name in [time_name, *target_list, *past, *future]:
        if name not in frame.columns:
            raise SeriesError(f"column {name!r} not found in {source}; columns found: {columns}")
    roles = [*target_list, *past, *future]
    for name in roles:
        if roles.count(name) > 1 or name == time_name:
            raise SeriesError(
                f"column {name!r} is given more than one role (time/target/covariate)"
            )

    timestamps = _parse_timestamps(frame[time_name], time_name, source)
    values = np.column_stack([numeric_column(frame[name], name, source) for name in roles])
    report = SeriesReport(source=source, rows=len(frame))
    if len(frame) == 0:
        raise SeriesError(f"{source} has no data rows")

    order = np.arange(len(frame))
    if not timestamps.is_monotonic_increasing:
        later = np.flatnonzero(np.diff(timestamps.asi8) < 0)
        row = int(later[0]) + 1
        if not sort:
            raise SeriesError(
                f"timestamps in {source} are not sorted: row {row} ({timestamps[row]}) comes "
                f"after row {row - 1} ({timestamps[row - 1]}); to sort them set data.sort = true "
                "(--set data.sort=true; sort=True in Python)"
            )
        order = np.argsort(timestamps.asi8, kind="stable")
        timestamps = timestamps[order]
        values = values[order]
        report.notices.append(
            f"timestamps were not sorted (first at row {row}); rows sorted by time"
        )
        logger.info("%s: %s", source, report.notices[-1])
    duplicated = np.flatnonzero(np.diff(timestamps.asi8) == 0)
    if duplicated.size:
        i = int(duplicated[0])
        raise SeriesError(
            f"duplicate timestamp {timestamps[i]} in {source} at rows {int(order[i])} and "
            f"{int(order[i + 1])}; aggregate or drop duplicates first"
        )

    values = _handle_missing(values, roles, timestamps, order, fill, source, report)
    freq = _infer_freq(timestamps, report)
    calendar_values, calendar_names = calendar_features(timestamps, calendar, calendar_encoding)
    nt, npast = len(target_list), len(past)
    return TimeSeries(
        values=values,
        target_names=tuple(roles[:nt]),
        past_names=tuple(roles[nt : nt + npast]),
        future_names=tuple(roles[nt + npast :]),
        calendar=calendar_values,
        calendar_names=calendar_names,
        timestamps=timestamps,
        freq=freq,
        report=report,
    )


def _parse_timestamps(column: pd.Series, name: str, source: str) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.to_datetime(column)
    else:
        text = column.astype(str).where(column.notna(), None)
        try:
            with warnings.catch_warnings():  # pandas' "could not infer format": we check below
                warnings.simplefilter("ignore", UserWarning)
                parsed = pd.to_datetime(text, errors="coerce")
        except (ValueError, TypeError) as exc:  # e.g. mixed time zones
            raise SeriesError(
                f"cannot parse timestamps in column {name!r} of {source}: {exc}"
            ) from exc
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise SeriesError(
            f"cannot parse timestamp {_cell(column.iloc[row])!r} in column {name!r} "
            f"at row {row} of {source}"
        )
    try:
        return pd.DatetimeIndex(parsed).as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        raise SeriesError(
            f"timestamps in column {name!r} of {source} are outside the supported range "
            f"{pd.Timestamp.min.year}-{pd.Timestamp.max.year}: {exc}"
        ) from exc


def numeric_column(column: pd.Series, name: str, source: str) -> np.ndarray:
    """A column as float64 (booleans as 0/1, empty cells NaN).

    Raises:
        SeriesError: a cell that is not a number, or an infinite one, naming its row.
    """
    if pd.api.types.is_bool_dtype(column):
        numeric = column.astype(np.float64)
    elif pd.api.types.is_numeric_dtype(column):
        numeric = column
    else:
        numeric = pd.to_numeric(column, errors="coerce")
        bad = np.flatnonzero((numeric.isna() & column.notna()).to_numpy())
        if bad.size:
            row = int(bad[0])
            raise SeriesError(
                f"non-numeric value {_cell(column.iloc[row])!r} in column {name!r} "
                f"at row {row} of {source}"
            )
    array = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.flatnonzero(np.isinf(array))
    if infinite.size:
        row = int(infinite[0])
        raise SeriesError(
            f"infinite value {array[row]} in column {name!r} at row {row} of {source}"
        )
    return array


def _handle_missing(
    values: np.ndarray,
    names: list[str],
    timestamps: pd.DatetimeIndex,
    order: np.ndarray,
    fill: Fill | None,
    source: str,
    report: SeriesReport,
) -> np.ndarray:
    missing = np.isnan(values)  # (T, C)
    if not missing.any():
        return values
    for j, name in enumerate(names):
        rows = np.flatnonzero(missing[:, j])
        if rows.size == 0:
            continue
        first = int(rows[0])
        if rows.size == len(values):
            raise SeriesError(f"column {name!r} of {source} has no values at all")
        if fill is None:
            raise SeriesError(
                f"missing value in column {name!r} at row {int(order[first])} "
                f"({timestamps[first]}) of {source}; to fill gaps set "
                'data.fill = "ffill" or "interpolate" (--set data.fill=ffill; fill="ffill" '
                "in Python)"
            )
        report.filled[name] = int(rows.size)
    frame = pd.DataFrame(values, columns=range(values.shape[1]))
    if fill == "ffill":
        frame = frame.ffill().bfill()
    else:
        frame = frame.interpolate(method="linear", limit_direction="both")
    report.notices.append(f"filled {int(missing.sum())} missing values with {fill}")
    filled: np.ndarray = frame.to_numpy(dtype=np.float64)
    return filled


def _infer_freq(timestamps: pd.DatetimeIndex, report: SeriesReport) -> str | None:
    """The most common step as a pandas alias; gaps on that grid go to ``report.gaps``."""
    if len(timestamps) < 2:
        return None
    diffs = pd.Series(np.diff(timestamps.asi8))  # nanoseconds, all > 0
    step_ns = int(diffs.mode().iloc[0])
    freq = _alias(timestamps, step_ns)
    if freq is None:
        report.notices.append("no regular frequency found: calendar-based steps vary")
        return None
    grid = pd.date_range(timestamps[0], timestamps[-1], freq=freq)
    if len(timestamps.difference(grid)) > 0:
        report.notices.append(f"timestamps are off the {freq!r} grid: no regular frequency")
        return None
    missing = grid.difference(timestamps)
    if len(missing):
        positions = grid.get_indexer(missing)
        starts = np.flatnonzero(np.diff(positions, prepend=-2) != 1)
        ends = np.append(starts[1:], len(positions))
        report.gaps = [(str(missing[s]), int(e - s)) for s, e in zip(starts, ends, strict=True)]
    return freq


def _alias(timestamps: pd.DatetimeIndex, step_ns: int) -> str | None:
    day_ns = 86_400 * 10**9
    if step_ns < 28 * day_ns:
        for unit, size in (("D", day_ns), ("h", 3600 * 10**9), ("min", 60 * 10**9), ("s", 10**9)):
            if step_ns % size == 0:
                count = step_ns // size
                return unit if count == 1 else f"{count}{unit}"
        return f"{step_ns}ns"
    days = step_ns / day_ns
    months = {1: (28, 31), 3: (89, 92), 12: (365, 366)}
    for count, (low, high) in months.items():
        if low <= days <= high:
            return _calendar_alias(timestamps, count)
    return None


def _calendar_alias(timestamps: pd.DatetimeIndex, months: int) -> str | None:
    if bool((timestamps.day == 1).all()):
        anchor = "S"
    elif bool(timestamps.is_month_end.all()):
        anchor = "E"
    else:
        return None
    if months == 1:
        return f"M{anchor}"
    if months == 12:
        return f"Y{anchor}"
    return f"Q{anchor}-{timestamps[0].strftime('%b').upper()}"


def _cell(value: object) -> object:
    """A cell as a plain Python value, for messages (``1`` rather than ``np.int64(1)``)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
