"""``rnnlab.forecasting.recent_rows`` through :func:`rnnlab.forecasting.forecast`: the recent
rows of the input file, their missing values and missing timestamps (filled by the run's
``data.fill`` with a notice, or refused), the columns the run does not use (ignored with a
notice) and the known-future rows after the history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.forecasting.helpers import ROWS, recent, series, train_run

from rnnlab.errors import DataError
from rnnlab.forecasting import forecast

START = pd.Timestamp("2022-03-01")


def hour(row: int) -> pd.Timestamp:
    """The timestamp of row ``row`` of :func:`series`."""
    return START + pd.Timedelta(hours=row)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(tmp_path_factory.mktemp("nofill"))


@pytest.fixture(scope="module")
def ffill_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(tmp_path_factory.mktemp("ffill"), epochs=2, fill="ffill")


@pytest.fixture(scope="module")
def future_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(
        tmp_path_factory.mktemp("future"), epochs=1, past_covariates=[], future_covariates=["x"]
    )


def write(frame: pd.DataFrame, folder: Path, name: str = "recent.csv") -> Path:
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def rows(end: int = ROWS, count: int = 30) -> pd.DataFrame:
    return series().iloc[end - count : end].reset_index(drop=True)


# ------------------------------------------------------------------ a missing last target


def test_missing_last_target_is_refused_without_fill(run_dir: Path, tmp_path: Path) -> None:
    frame = rows()
    frame.loc[29, "y"] = np.nan
    with pytest.raises(DataError) as caught:
        forecast(run_dir, write(frame, tmp_path))
    message = str(caught.value)
    assert "recent.csv: the target 'y' is missing at 2022-03-17 15:00 (the last row)" in message
    assert "the run does not fill gaps (data.fill is unset)" in message
    assert 'data.fill = "ffill"' in message


def test_missing_last_target_is_filled_with_a_notice(ffill_run: Path, tmp_path: Path) -> None:
    frame = rows()
    frame.loc[29, "y"] = np.nan
    table = forecast(ffill_run, write(frame, tmp_path))
    # the forecast still starts one step after the last row: no silent shift
    assert table["time"].iloc[0] == hour(ROWS)
    notices = table.attrs["notices"]
    assert len(notices) == 1, notices
    assert "the target 'y' was missing at 2022-03-17 15:00 (the last row)" in notices[0]
    assert "filled with ffill (the run's data.fill)" in notices[0]
    assert forecast(ffill_run, recent(tmp_path, name="full.csv")).attrs["notices"] == []


def test_missing_covariate_names_the_file_row(run_dir: Path, tmp_path: Path) -> None:
    frame = rows()
    frame.loc[25, "x"] = np.nan
    with pytest.raises(
        DataError, match=r"the covariate 'x' is missing at 2022-03-17 11:00 \(row 25\)"
    ):
        forecast(run_dir, write(frame, tmp_path))


# ------------------------------------------------------------------ missing timestamps


def test_gap_in_the_timestamps_is_refused_without_fill(run_dir: Path, tmp_path: Path) -> None:
    frame = rows().drop(index=[24, 25])  # 2022-03-17 10:00 and 11:00
    with pytest.raises(DataError) as caught:
        forecast(run_dir, write(frame, tmp_path))
    message = str(caught.value)
    assert "2 timestamps are missing" in message and "2022-03-17 10:00, 2022-03-17 11:00" in message
    assert "(data.fill is unset)" in message


def test_gap_in_the_timestamps_is_filled_with_a_notice(ffill_run: Path, tmp_path: Path) -> None:
    frame = rows().drop(index=[24, 25])
    table = forecast(ffill_run, write(frame, tmp_path))
    assert list(table["time"]) == [hour(ROWS + k) for k in range(5)]
    (notice,) = table.attrs["notices"]
    assert "2022-03-17 10:00, 2022-03-17 11:00" in notice and "ffill" in notice


def test_gap_before_the_rows_the_model_reads_is_harmless(run_dir: Path, tmp_path: Path) -> None:
    full = forecast(run_dir, recent(tmp_path))
    gapped = forecast(run_dir, write(rows().drop(index=[2, 3]), tmp_path, "gap.csv"))
    assert gapped.attrs["notices"] == [] and np.allclose(full["y"], gapped["y"])


def test_timestamps_off_the_training_grid(run_dir: Path, tmp_path: Path) -> None:
    frame = rows()
    frame.loc[25, "time"] = hour(ROWS - 5) + pd.Timedelta(minutes=30)
    with pytest.raises(DataError, match=r"not on the 'h' grid of the training series"):
        forecast(run_dir, write(frame, tmp_path))


# ------------------------------------------------------------------ columns the run ignores


def test_columns_the_run_does_not_use_are_ignored(run_dir: Path, tmp_path: Path) -> None:
    frame = rows()
    frame["z"] = 1.0
    frame.insert(1, "note", "text")
    table = forecast(run_dir, write(frame, tmp_path))
    (notice,) = table.attrs["notices"]
    assert "ignored the columns ['note', 'z']" in notice
    assert np.allclose(table["y"], forecast(run_dir, recent(tmp_path, name="plain.csv"))["y"])


def test_a_missing_column_is_still_an_error(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing \['x'\]"):
        forecast(run_dir, write(rows().drop(columns=["x"]), tmp_path))


# ------------------------------------------------------------------ known-future rows


def future_rows(missing_last: bool = False, shift: int = 0) -> pd.DataFrame:
    frame = series().iloc[ROWS - 30 : ROWS + 5].reset_index(drop=True)
    frame.loc[30:, "y"] = np.nan
    if missing_last:
        frame.loc[29, "y"] = np.nan
    frame.loc[30:, "time"] = frame.loc[30:, "time"] + pd.Timedelta(hours=shift)
    return frame


def test_known_future_rows_follow_the_history(future_run: Path, tmp_path: Path) -> None:
    table = forecast(future_run, write(future_rows(), tmp_path))
    assert list(table["time"]) == [hour(ROWS + k) for k in range(5)]
    assert table.attrs["notices"] == []


def test_missing_last_target_before_future_rows_is_refused(
    future_run: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match=r"the last 6 rows have no target value.*2022-03-17 15:00"):
        forecast(future_run, write(future_rows(missing_last=True), tmp_path))


def test_future_rows_with_the_wrong_timestamps(future_run: Path, tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"start at 2022-03-17 17:00.*forecast starts at 2022-03-17 16:00"
    ):
        forecast(future_run, write(future_rows(shift=1), tmp_path))
