"""Put the rows of a table on a regular time grid: missing timestamps become empty rows.

:func:`load_series` reports gaps in the timestamps (``report.gaps``) and leaves them; a
caller that needs one row per step (forecasting from recent rows: the model reads the last
``input_length`` *steps*) calls :func:`to_grid` first. The inserted rows are empty (NaN) in
every column but the time column, so a fill policy (``fill="ffill"``/``"interpolate"`` of
:func:`series_from_frame`) fills them like any missing cell, or a caller refuses them.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 03:00"]),
    ...                       "y": [1.0, 4.0]})
    >>> rows = to_grid(frame, "t", "h", "<frame>")
    >>> len(rows.frame), [str(t) for t in rows.inserted], rows.file_rows.tolist()
    (4, ['2024-01-01 01:00:00', '2024-01-01 02:00:00'], [0, -1, -1, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rnnlab.data.series.errors import SeriesError
from rnnlab.data.series.load import _parse_timestamps


@dataclass(frozen=True)
class GridRows:
    """A table on a regular grid.

    Attributes:
        frame: one row per grid step from the first to the last timestamp; inserted rows
            are NaN except in the time column (which holds the parsed timestamps).
        inserted: the timestamps that were missing (and are now empty rows).
        file_rows: ``(len(frame),)`` for each grid row its position in the input table,
            ``-1`` for an inserted row.
    """

    frame: pd.DataFrame
    inserted: pd.DatetimeIndex
    file_rows: np.ndarray


def to_grid(frame: pd.DataFrame, time_column: str, freq: str, source: str) -> GridRows:
    """Insert an empty row for each timestamp missing from the ``freq`` grid of ``frame``.

    Args:
        frame: rows in time order (an empty table is returned as it is).
        time_column: the timestamp column.
        freq: a pandas frequency alias (``"h"``, ``"15min"``, ``"MS"``...), typically the
            frequency inferred from the training series.
        source: the file the rows came from, for messages.

    Returns:
        The :class:`GridRows`; rows are numbered as pandas numbers them (row 0 is the first
        data row) in messages.

    Raises:
        SeriesError: an unparsable timestamp, timestamps not strictly increasing (unsorted
            or duplicated), or a timestamp off the ``freq`` grid that starts at the first.
    """
    frame = frame.reset_index(drop=True)
    if len(frame) == 0:
        return GridRows(frame, pd.DatetimeIndex([]), np.zeros(0, dtype=np.int64))
    stamps = _parse_timestamps(frame[time_column], time_column, source)
    steps = np.diff(stamps.asi8)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        what = "the same as" if steps[row - 1] == 0 else "before"
        raise SeriesError(
            f"timestamps in {source} must increase: row {row} ({stamps[row]}) is {what} "
            f"row {row - 1} ({stamps[row - 1]})"
        )
    try:
        grid = pd.date_range(stamps[0], stamps[-1], freq=freq)
    except ValueError as err:
        raise SeriesError(f"cannot build the {freq!r} time grid of {source}: {err}") from None
    positions = grid.get_indexer(stamps)
    off = np.flatnonzero(positions < 0)
    if off.size:
        row = int(off[0])
        raise SeriesError(
            f"timestamp {stamps[row]} at row {row} of {source} is not on the {freq!r} grid of "
            f"the training series (steps of {freq!r} from {stamps[0]})"
        )
    file_rows = np.full(len(grid), -1, dtype=np.int64)
    file_rows[positions] = np.arange(len(stamps))
    on_grid = frame.set_axis(positions).reindex(range(len(grid)))
    on_grid[time_column] = grid
    return GridRows(on_grid, grid[file_rows < 0], file_rows)


__all__ = ["GridRows", "to_grid"]
