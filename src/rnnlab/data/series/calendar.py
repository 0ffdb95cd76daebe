"""Calendar features from timestamps (hour, day of week, month ...), known ahead of time.

Each feature is a periodic position in ``[0, P)``, encoded as two columns
``sin(2 pi k / P), cos(2 pi k / P)`` (``sincos``) or one ``k / (P - 1) - 0.5`` (``scaled``).
:func:`~rnnlab.data.series.load.load_series` adds them to a series; future timestamps get them
the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from rnnlab.data.series.errors import SeriesError

CalendarEncoding = Literal["sincos", "scaled"]

#: Calendar features: name -> (``DatetimeIndex`` attribute, period, value of the first step).
#: ``scaled`` maps ``k = value - first`` in ``[0, period)`` to ``k / (period - 1) - 0.5`` (the
#: Informer code's time features); ``sincos`` to ``sin(2 pi k / period), cos(2 pi k / period)``.
CALENDAR_FEATURES: dict[str, tuple[str, int, int]] = {
    "minute": ("minute", 60, 0),
    "hour": ("hour", 24, 0),
    "dayofweek": ("day_of_week", 7, 0),
    "dayofmonth": ("day", 31, 1),
    "dayofyear": ("day_of_year", 366, 1),
    "month": ("month", 12, 1),
}


def calendar_features(
    timestamps: pd.DatetimeIndex, names: Sequence[str], encoding: CalendarEncoding = "sincos"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Calendar features of ``timestamps``, also usable for future timestamps.

    Args:
        timestamps: the times.
        names: feature names from :data:`CALENDAR_FEATURES`.
        encoding: ``"sincos"``: ``sin(2 pi k / P), cos(2 pi k / P)`` for ``k`` in ``[0, P)``;
            ``"scaled"``: ``k / (P - 1) - 0.5``.

    Returns:
        ``(T, K)`` float64 values and their column names.

    Example:
        >>> ts = pd.DatetimeIndex(["2016-07-01 06:00"])
        >>> calendar_features(ts, ["hour"], "scaled")[0].round(4).tolist()
        [[-0.2391]]
    """
    columns: list[np.ndarray] = []
    column_names: list[str] = []
    for name in names:
        if name not in CALENDAR_FEATURES:
            raise SeriesError(
                f"unknown calendar feature {name!r}; expected one of {sorted(CALENDAR_FEATURES)}"
            )
        attribute, period, offset = CALENDAR_FEATURES[name]
        k = np.asarray(getattr(timestamps, attribute), dtype=np.float64) - offset  # (T,)
        if encoding == "sincos":
            angle = 2.0 * math.pi * k / period
            columns += [np.sin(angle), np.cos(angle)]
            column_names += [f"{name}_sin", f"{name}_cos"]
        else:
            columns.append(k / (period - 1) - 0.5)
            column_names.append(name)
    if not columns:
        return np.zeros((len(timestamps), 0)), ()
    return np.column_stack(columns), tuple(column_names)
