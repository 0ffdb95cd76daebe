"""Chronological train / valid / test splits, including the ETT protocol of the literature.

A :class:`Split` holds the rows whose values are *targets* of each part, as half-open row
ranges ``[start, end)``. A window model also reads ``input_length`` rows of history before
its first target. Training windows read only training rows (the first target of the first
window is row ``train.start + input_length``). Validation and test windows start
``input_length`` rows before their part, so their first target is the first row of the part
and every row of the part is a target at least once; their inputs look back into the
preceding part, which is the past, never the future::

    rows:     0 ............ a ............ b ............ c
    targets:  [ train      ) [ valid      ) [ test       )
    windows:  [ train      )
                        [a-L ...... valid )
                                       [b-L ....... test  )

The ETT protocol (Zhou et al. 2021, Informer; kept by Autoformer, DLinear and later work):
12 months of 30 days for training, 4 for validation, 4 for test, from the first row, at
24 rows a day for ETTh and 96 for ETTm. So ETTh: train ``[0, 8640)``, valid ``[8640, 11520)``,
test ``[11520, 14400)``; the rows after 14400 are unused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from rnnlab.data.series.errors import SeriesError

Part = Literal["train", "valid", "test"]
PARTS: tuple[Part, ...] = ("train", "valid", "test")

#: ETT protocol lengths in hours (12, 4 and 4 months of 30 days).
ETT_TRAIN_HOURS = 12 * 30 * 24
ETT_VALID_HOURS = 4 * 30 * 24
ETT_TEST_HOURS = 4 * 30 * 24


@dataclass(frozen=True)
class Split:
    """Target rows of each part as half-open ranges, in time order and not overlapping.

    Attributes:
        train: ``(start, end)`` rows of the training part.
        valid: ``(start, end)``; may be empty (``start == end``).
        test: ``(start, end)``; may be empty.
    """

    train: tuple[int, int]
    valid: tuple[int, int]
    test: tuple[int, int]

    def __post_init__(self) -> None:
        previous_end = 0
        for name in PARTS:
            start, end = self.part(name)
            if start < previous_end or end < start:
                raise SeriesError(
                    f"split part {name}=({start}, {end}) must satisfy start <= end and not "
                    f"overlap the part before (which ends at {previous_end})"
                )
            previous_end = end
        if self.train[1] == self.train[0]:
            raise SeriesError(f"the training part is empty: train={self.train}")

    def part(self, name: Part) -> tuple[int, int]:
        """``(start, end)`` target rows of part ``name``."""
        if name not in PARTS:
            raise SeriesError(f"split part must be one of {PARTS}, got {name!r}")
        value: tuple[int, int] = getattr(self, name)
        return value

    def window_rows(self, name: Part, input_length: int) -> tuple[int, int]:
        """``(begin, end)`` rows that the windows of part ``name`` read (history included).

        Args:
            name: ``"train"``, ``"valid"`` or ``"test"``.
            input_length: rows of history per window.

        Raises:
            SeriesError: when a valid/test part starts less than ``input_length`` rows in.
        """
        start, end = self.part(name)
        if name == "train":
            return start, end
        begin = start - input_length
        if begin < 0:
            raise SeriesError(
                f"the {name} part starts at row {start}, fewer than input_length={input_length} "
                f"rows into the series: no history for its first window"
            )
        return begin, end

    def check_rows(self, n_rows: int) -> None:
        """Raise when the split reaches past a series of ``n_rows`` rows."""
        if self.test[1] > n_rows:
            raise SeriesError(
                f"the split needs {self.test[1]} rows (test ends there) but the series has {n_rows}"
            )


def split_by_fraction(
    n_rows: int, train: float = 0.7, valid: float = 0.1, test: float = 0.2
) -> Split:
    """Split ``n_rows`` rows by fractions, in time order.

    ``n_train = int(n_rows * train)``, ``n_test = int(n_rows * test)`` and, when the
    fractions sum to 1, ``n_valid = n_rows - n_train - n_test`` (the rows ``int`` rounding
    leaves go to validation, as in the Autoformer code's custom data sets); otherwise
    ``n_valid = int(n_rows * valid)`` and the last rows are unused.

    Example:
        >>> split_by_fraction(100, 0.7, 0.1, 0.2)
        Split(train=(0, 70), valid=(70, 80), test=(80, 100))
    """
    fractions = {"train": train, "valid": valid, "test": test}
    for name, value in fractions.items():
        if not 0.0 <= value <= 1.0:
            raise SeriesError(f"split fraction {name} must be in [0, 1], got {value!r}")
    total = train + valid + test
    if total > 1.0 + 1e-9:
        raise SeriesError(f"split fractions must sum to at most 1, got {total:.6g}")
    n_train = int(n_rows * train)
    n_test = int(n_rows * test)
    n_valid = n_rows - n_train - n_test if abs(total - 1.0) < 1e-9 else int(n_rows * valid)
    return Split(
        train=(0, n_train),
        valid=(n_train, n_train + n_valid),
        test=(n_train + n_valid, n_train + n_valid + n_test),
    )


def split_by_dates(
    timestamps: pd.DatetimeIndex | Sequence[object],
    valid_start: object,
    test_start: object,
    end: object | None = None,
) -> Split:
    """Split at dates: train before ``valid_start``, valid before ``test_start``, test after.

    Args:
        timestamps: the sorted timestamps of the series.
        valid_start: first timestamp of validation (anything ``pandas.Timestamp`` reads).
        test_start: first timestamp of test.
        end: test rows are those before ``end``; all remaining rows when omitted.

    Example:
        >>> ts = pd.date_range("2020-01-01", periods=10, freq="D")
        >>> split_by_dates(ts, "2020-01-07", "2020-01-09")
        Split(train=(0, 6), valid=(6, 8), test=(8, 10))
    """
    index = pd.DatetimeIndex(timestamps)
    if not index.is_monotonic_increasing:
        raise SeriesError("split_by_dates needs sorted timestamps")
    dates = {"valid_start": valid_start, "test_start": test_start}
    if end is not None:
        dates["end"] = end
    rows: dict[str, int] = {}
    for name, value in dates.items():
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError) as exc:
            raise SeriesError(f"{name}={value!r} is not a date: {exc}") from exc
        if index.tz is not None and stamp.tz is None:
            stamp = stamp.tz_localize(index.tz)
        rows[name] = int(index.searchsorted(stamp, side="left"))
    a, b = rows["valid_start"], rows["test_start"]
    c = rows.get("end", len(index))
    if not a <= b <= c:
        raise SeriesError(
            f"split dates must be in order valid_start <= test_start <= end, got "
            f"{valid_start!r}, {test_start!r}, {end!r}"
        )
    return Split(train=(0, a), valid=(a, b), test=(b, c))


def ett_split(n_rows: int | None = None, rows_per_hour: int = 1) -> Split:
    """The ETT split of the long-horizon literature (Informer, Autoformer, DLinear code).

    Args:
        n_rows: the series length, checked to cover the split when given.
        rows_per_hour: 1 for ETTh1/ETTh2 (hourly), 4 for ETTm1/ETTm2 (15 minutes).

    Returns:
        Train ``[0, 8640 r)``, valid ``[8640 r, 11520 r)``, test ``[11520 r, 14400 r)``, where
        ``r = rows_per_hour``. Valid and test windows start ``input_length`` rows before their
        part (see :meth:`Split.window_rows`), exactly as the ``border1s`` of that code.

    Example:
        >>> ett_split(17420)
        Split(train=(0, 8640), valid=(8640, 11520), test=(11520, 14400))
    """
    if rows_per_hour not in (1, 4):
        raise SeriesError(f"rows_per_hour must be 1 (ETTh) or 4 (ETTm), got {rows_per_hour!r}")
    a = ETT_TRAIN_HOURS * rows_per_hour
    b = a + ETT_VALID_HOURS * rows_per_hour
    c = b + ETT_TEST_HOURS * rows_per_hour
    split = Split(train=(0, a), valid=(a, b), test=(b, c))
    if n_rows is not None:
        split.check_rows(n_rows)
    return split


def ett_rows_per_hour(freq: str | None) -> int:
    """1 for an hourly series (``freq="h"``), 4 for 15-minute steps; an error otherwise."""
    table = {"h": 1, "15min": 4}
    if freq not in table:
        raise SeriesError(f"the ETT split needs an hourly or 15-minute series, got freq={freq!r}")
    return table[freq]
