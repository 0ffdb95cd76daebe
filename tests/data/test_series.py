"""rnnlab.data.series: loading checks, splits, scaling and windows against hand-worked cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnnlab.data.series import (
    Scaler,
    SeriesError,
    Split,
    WindowDataset,
    calendar_features,
    ett_split,
    load_series,
    prepare_forecast_data,
    series_from_frame,
    split_by_dates,
    split_by_fraction,
)

REPO = Path(__file__).resolve().parents[2]


def shared_data(*parts: str) -> Path | None:
    """A file under ``shared/data`` beside or above the repository, or ``None``."""
    for root in (REPO / "shared" / "data", REPO.parent / "shared" / "data"):
        path = root.joinpath(*parts)
        if path.is_file():
            return path
    return None


def write_csv(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def hourly_frame(rows: int, columns: int = 2) -> pd.DataFrame:
    data = {"date": pd.date_range("2020-01-01", periods=rows, freq="h")}
    for j in range(columns):
        data[f"c{j}"] = np.arange(rows, dtype=float) + 100 * j
    return pd.DataFrame(data)


# ----------------------------------------------------------------------------- loading


def test_load_roles_frequency_and_calendar(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "date,a,b,price\n"
        "2020-01-01 00:00,1,10,5\n2020-01-01 01:00,2,20,6\n2020-01-01 02:00,3,30,7\n",
    )
    s = load_series(
        path, targets="a", past_covariates=["b"], future_covariates=["price"], calendar=["hour"]
    )
    assert s.value_names == ("a", "b", "price")
    assert s.values.tolist() == [[1, 10, 5], [2, 20, 6], [3, 30, 7]]
    assert s.freq == "h"
    assert s.calendar_names == ("hour_sin", "hour_cos")
    assert s.calendar[1].tolist() == pytest.approx(
        [math.sin(2 * math.pi / 24), math.cos(2 * math.pi / 24)]
    )
    assert s.report.gaps == []


def test_default_targets_are_all_other_columns(tmp_path: Path) -> None:
    s = series_from_frame(hourly_frame(5, 3), past_covariates=["c2"])
    assert s.target_names == ("c0", "c1") and s.past_names == ("c2",)


def test_calendar_scaled_matches_informer_time_features() -> None:
    ts = pd.DatetimeIndex(["2016-07-04 23:00"])  # a Monday, hour 23, day 4 of July
    values, names = calendar_features(ts, ["hour", "dayofweek", "dayofmonth", "month"], "scaled")
    assert names == ("hour", "dayofweek", "dayofmonth", "month")
    assert values[0].tolist() == pytest.approx([0.5, -0.5, 3 / 30 - 0.5, 6 / 11 - 0.5])


def test_gaps_are_reported_not_filled() -> None:
    frame = hourly_frame(10).drop(index=[3, 4, 7])
    s = series_from_frame(frame)
    assert s.freq == "h" and len(s) == 7
    assert s.report.gaps == [("2020-01-01 03:00:00", 2), ("2020-01-01 07:00:00", 1)]
    assert s.report.missing_timestamps == 3


def test_monthly_frequency() -> None:
    frame = pd.DataFrame({"m": ["1949-01", "1949-02", "1949-03", "1949-05"], "y": [1, 2, 3, 4]})
    s = series_from_frame(frame)
    assert s.freq == "MS" and s.report.gaps == [("1949-04-01 00:00:00", 1)]


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match="not found"):
        load_series(tmp_path / "nope.csv")


def test_missing_column_lists_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "date,a\n2020-01-01,1\n")
    with pytest.raises(
        SeriesError, match=r"column 'OT' not found .*columns found: \['date', 'a'\]"
    ):
        load_series(path, targets="OT")


def test_non_numeric_cell_names_column_row_and_value(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "date,a\n2020-01-01,1\n2020-01-02,x7\n2020-01-03,3\n")
    with pytest.raises(SeriesError, match=r"non-numeric value 'x7' in column 'a' at row 1"):
        load_series(path)


def test_bad_timestamp_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "date,a\n2020-01-01,1\nyesterday,2\n")
    with pytest.raises(SeriesError, match=r"cannot parse timestamp 'yesterday' .* row 1"):
        load_series(path)


def test_missing_value_error_then_fills(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, "date,a,b\n2020-01-01,,1\n2020-01-02,2,2\n2020-01-03,,3\n2020-01-04,6,4\n"
    )
    with pytest.raises(
        SeriesError, match=r"missing value in column .a. at row 0 .*data.fill = \"ffill\""
    ):
        load_series(path)
    forward = load_series(path, fill="ffill")
    assert forward.values[:, 0].tolist() == [2, 2, 2, 6]  # leading value: first observation
    assert forward.report.filled == {"a": 2}
    linear = load_series(path, fill="interpolate")
    assert linear.values[:, 0].tolist() == [2, 2, 4, 6]


def test_unsorted_error_or_sorted_with_notice(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "date,a\n2020-01-02,2\n2020-01-01,1\n2020-01-03,3\n")
    with pytest.raises(
        SeriesError, match=r"not sorted: row 1 .*set data.sort = true \(--set data.sort=true"
    ):
        load_series(path)
    s = load_series(path, sort=True)
    assert s.values[:, 0].tolist() == [1, 2, 3]
    assert any("sorted" in notice for notice in s.report.notices)


def test_duplicate_timestamps_are_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "date,a\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n")
    with pytest.raises(
        SeriesError, match=r"duplicate timestamp 2020-01-02 00:00:00 .* rows 1 and 2"
    ):
        load_series(path, sort=True)


def test_errors_are_value_errors_with_one_line() -> None:
    with pytest.raises(ValueError) as info:
        series_from_frame(hourly_frame(3), targets=["zz"])
    assert "\n" not in str(info.value)


def test_parquet_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "s.parquet"
    hourly_frame(4).to_parquet(path)
    assert load_series(path).values.shape == (4, 2)


# ----------------------------------------------------------------------------- splits


def test_split_by_fraction_autoformer_rounding() -> None:
    assert split_by_fraction(101) == Split(train=(0, 70), valid=(70, 81), test=(81, 101))


def test_split_by_dates() -> None:
    ts = pd.date_range("2020-01-01", periods=10, freq="D")
    split = split_by_dates(ts, "2020-01-05", "2020-01-08")
    assert split == Split(train=(0, 4), valid=(4, 7), test=(7, 10))


def test_ett_protocol_borders() -> None:
    split = ett_split(17420)
    assert (split.train, split.valid, split.test) == ((0, 8640), (8640, 11520), (11520, 14400))
    # border1s of the Informer/Autoformer/DLinear code: [0, 8640 - L, 11520 - L]
    assert split.window_rows("train", 96) == (0, 8640)
    assert split.window_rows("valid", 96) == (8640 - 96, 11520)
    assert split.window_rows("test", 96) == (11520 - 96, 14400)
    minutes = ett_split(69680, rows_per_hour=4)
    assert minutes.test == (46080, 57600)
    with pytest.raises(SeriesError, match="needs 14400 rows"):
        ett_split(14000)


def test_overlapping_split_is_an_error() -> None:
    with pytest.raises(SeriesError, match="overlap"):
        Split(train=(0, 10), valid=(5, 12), test=(12, 14))


# ----------------------------------------------------------------------------- windows


def test_windows_hand_worked() -> None:
    # rows 0..9, L=3, H=2, stride 2: starts 0, 2, 4 (start 6 would need rows up to 10)
    ds = WindowDataset(np.arange(10.0)[:, None], 10 * np.arange(10.0)[:, None], 3, 2, stride=2)
    assert len(ds) == 3
    assert ds[1]["inputs"].flatten().tolist() == [2, 3, 4]
    assert ds[1]["targets"].flatten().tolist() == [50, 60]
    assert ds[-1]["targets"].flatten().tolist() == [70, 80]
    assert ds.origins.tolist() == [3, 5, 7]
    x, y, f = ds.tensors()
    assert torch.equal(x[2], ds[2]["inputs"]) and torch.equal(y[2], ds[2]["targets"])
    assert f.shape == (3, 2, 0)


def test_series_shorter_than_window_is_an_error() -> None:
    with pytest.raises(SeriesError, match=r"train part has 10 rows, fewer than .* = 8 \+ 4 = 12"):
        WindowDataset(np.zeros((10, 1)), np.zeros((10, 1)), 8, 4, name="train")


def test_prepare_no_leakage_into_training_or_scaler() -> None:
    # Targets equal the row number; valid/test rows are huge so any leak would show.
    frame = hourly_frame(40, 1)
    frame.loc[20:, "c0"] = 1e6 + np.arange(20)
    series = series_from_frame(frame, calendar=["hour"])
    split = Split(train=(0, 20), valid=(20, 30), test=(30, 40))
    data = prepare_forecast_data(series, split, input_length=4, horizon=3)
    assert data.scaler is not None
    assert data.scaler.shift is not None and data.scaler.scale is not None
    assert data.scaler.shift.tolist() == pytest.approx([9.5])  # mean of rows 0..19 only
    assert data.scaler.scale.tolist() == pytest.approx([np.arange(20.0).std()])
    _, y_train, _ = data.train.tensors()
    assert data.to_original(y_train).max() == pytest.approx(19.0)  # no target past row 19
    assert data.train.origins.tolist()[0] == 4 and data.train.origins[-1] + 3 == 20
    # valid: first target is row 20, history from rows 16..19; last target row 29
    assert data.part("valid").origins[0] == 20
    assert data.to_original(data.part("valid")[0]["inputs"][:, :1]).flatten().tolist() == [
        pytest.approx(v) for v in (16, 17, 18, 19)
    ]
    assert data.part("test").origins.tolist() == list(range(30, 38))
    assert data.input_names == ("c0", "hour_sin", "hour_cos")
    assert data.future_names == ("hour_sin", "hour_cos")
    assert data.part("test")[0]["future_covariates"].shape == (3, 2)


def test_etth1_split_sizes_with_real_file() -> None:
    path = shared_data("ett", "ETTh1.csv")
    if path is None:
        pytest.skip("shared/data/ett/ETTh1.csv is not present")
    series = load_series(path)
    assert len(series) == 17420 and series.freq == "h" and len(series.target_names) == 7
    data = prepare_forecast_data(series, ett_split(len(series)), input_length=96, horizon=96)
    assert data.split.train == (0, 8640)
    assert data.split.valid == (8640, 11520) and data.split.test == (11520, 14400)
    # windows: segment rows - L - H + 1; valid/test segments are 2880 + 96 rows
    assert (len(data.train), len(data.part("valid")), len(data.part("test"))) == (8449, 2785, 2785)
    assert data.part("test").origins[0] == 11520 and data.part("test").origins[-1] + 96 == 14400
    assert data.scaler is not None and data.scaler.shift is not None
    assert data.scaler.shift == pytest.approx(series.values[:8640].mean(axis=0))


# ----------------------------------------------------------------------------- scaling


@pytest.mark.parametrize("kind", ["zscore", "minmax"])
def test_scaler_round_trip_and_json(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(5.0, 3.0, size=(50, 3))
    values[:, 2] = 7.0  # constant column: scale 1
    scaler = Scaler(kind).fit(values, names=["a", "b", "c"])  # type: ignore[arg-type]
    z = scaler.transform(values)
    if kind == "zscore":
        assert z[:, :2].mean(axis=0) == pytest.approx([0, 0], abs=1e-12)
        assert z[:, :2].std(axis=0) == pytest.approx([1, 1])
    else:
        assert z[:, :2].min(axis=0) == pytest.approx([0, 0]) and z[:, :2].max(
            axis=0
        ) == pytest.approx([1, 1])
    assert np.allclose(z[:, 2], 0.0)
    assert np.allclose(scaler.inverse_transform(z), values)
    path = tmp_path / "scaler.json"
    scaler.save(path)
    assert json.loads(path.read_text())["kind"] == kind
    loaded = Scaler.load(path)
    tensor = torch.tensor(z[:, [1]], dtype=torch.float64)
    assert torch.allclose(
        loaded.inverse_transform(tensor, columns=["b"]), torch.tensor(values[:, [1]])
    )
    assert np.allclose(loaded.inverse_variance(np.ones((1, 1)), ["b"]), scaler.scale[1] ** 2)  # type: ignore[index]


def test_scaler_errors(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match="not fitted"):
        Scaler().transform(np.zeros((1, 1)))
    scaler = Scaler().fit(np.zeros((2, 2)), names=["a", "b"])
    with pytest.raises(SeriesError, match="columns"):
        scaler.transform(np.zeros((1, 3)))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SeriesError, match="not valid JSON"):
        Scaler.load(bad)
