"""Fuzzed CSVs for ``rnnlab forecast RUN --input X --out Y`` (and as the training series of
a forecasting run): missing and extra columns, random cells (text, empty, NaN, inf, huge),
shuffled and duplicated timestamps, odd timestamp text, byte-order marks, delimiters,
encodings, line endings, truncation and random bytes. Each case must exit 0 or 2 with no
traceback and a one-line error, and leave the run directory, the input and an existing
output file (unless the forecast succeeded) byte-identical."""

from __future__ import annotations

import codecs
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.forecasting.helpers import ROWS, series
from tests.fuzz.helpers import check, copy_run, fuzz, scratch, sets, snapshot

cells = st.one_of(
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "NA", "null", "0x1F"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=8),
)
stamps = st.one_of(
    st.sampled_from(["", "2022-02-30 00:00", "2022-03-01T25:00", "yesterday", "1e9", "0"]),
    st.datetimes().map(str),
    st.text(max_size=10),
)


@st.composite
def frames(draw: st.DrawFn, rows: int) -> pd.DataFrame:
    """``rows`` rows of the forecasting tests' series, as text, with 0-4 random edits."""
    frame = series().iloc[ROWS - rows : ROWS].reset_index(drop=True).astype(str)
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3, 4]))):
        edit = draw(
            st.sampled_from(
                ["drop", "extra", "cell", "cell", "stamp", "shuffle", "duplicate", "rename",
                 "reverse", "header", "head"]
            )
        )  # fmt: skip
        if frame.empty:
            break
        columns = list(frame.columns)
        row = draw(st.integers(0, len(frame) - 1))
        if edit == "drop" and columns:
            frame = frame.drop(columns=[draw(st.sampled_from(columns))])
        elif edit == "extra":
            frame[draw(st.sampled_from(["z", "y", "", "time", "x "]))] = draw(cells)
        elif edit == "cell" and columns:
            frame.loc[row, draw(st.sampled_from(columns))] = draw(cells)
        elif edit == "stamp" and "time" in columns:
            frame.loc[row, "time"] = draw(stamps)
        elif edit == "shuffle":
            frame = frame.sample(frac=1.0, random_state=draw(st.integers(0, 99)))
        elif edit == "duplicate":
            frame = pd.concat([frame, frame.iloc[[row]]]).sort_index(kind="stable")
        elif edit == "rename" and columns:
            frame = frame.rename(
                columns={draw(st.sampled_from(columns)): draw(st.text(max_size=4))}
            )
        elif edit == "reverse":
            frame = frame.iloc[::-1]
        elif edit == "header":
            frame = frame.iloc[:0]
        else:
            frame = frame.iloc[: draw(st.integers(0, len(frame)))]
        frame = frame.reset_index(drop=True)
    return frame


@st.composite
def csv_files(draw: st.DrawFn, rows: int) -> tuple[str, bytes]:
    """A file name and its bytes: a generated frame written with a random delimiter, line
    ending, byte-order mark and encoding, maybe truncated or with bytes inserted; or
    random bytes."""
    suffix = draw(st.sampled_from([".csv", ".csv", ".csv", ".tsv", ".CSV", ".parquet", ".txt"]))
    if draw(st.integers(0, 9)) == 0:
        return f"input{suffix}", draw(st.binary(max_size=300))
    frame = draw(frames(rows))
    sep = "\t" if suffix == ".tsv" else ","
    sep = draw(st.sampled_from([sep, sep, sep, ";", "|", " "]))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = frame.to_csv(index=False, sep=sep, lineterminator=ending)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()) and encoding == "utf-8":
        data = codecs.BOM_UTF8 + data
    mutation = draw(st.sampled_from(["none", "none", "none", "truncate", "insert"]))
    if mutation != "none" and data:
        at = draw(st.integers(0, len(data) - 1))
        extra = draw(st.binary(min_size=1, max_size=6)) if mutation == "insert" else b""
        data = data[:at] + extra + (data[at:] if mutation == "insert" else b"")
    return f"input{suffix}", data


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-csv")


@fuzz(60)
@given(
    file=csv_files(rows=30),
    horizon=st.sampled_from([*[None] * 8, 1, 3, 0, -1, 6]),
    existing_out=st.booleans(),
)
def test_generated_forecast_inputs(
    root: Path, forecast_run: Path, file: tuple[str, bytes], horizon: int | None, existing_out: bool
) -> None:
    run = copy_run(forecast_run, root)
    name, data = file
    source = run.parent / name
    source.write_bytes(data)
    out = run.parent / "forecast.csv"
    if existing_out:
        out.write_text("an earlier forecast\n")
    before = snapshot(run, source, *([out] if existing_out else []))
    args = ["forecast", run, "--input", source, "--out", out]
    if horizon is not None:
        args += ["--horizon", str(horizon)]
    result = check(args, before, may_change=lambda path: path == str(out))
    if result.exit_code == 0:
        table = pd.read_csv(out)
        assert len(table) == (horizon or 5) and table["y"].map(math.isfinite).all()


@fuzz(12)
@given(file=csv_files(rows=200))
def test_generated_training_series(root: Path, forecast_run: Path, file: tuple[str, bytes]) -> None:
    """The same files as the series a forecasting run trains on (its own config)."""
    case = scratch(root)
    name, data = file
    source = case / name
    source.write_bytes(data)
    config = forecast_run / "config.toml"
    before = snapshot(source, forecast_run)
    args = ["train", config, "--quiet", "--run-dir", case / "run"]
    args += sets(f"data.path={source}", "train.max_steps=2", "train.epochs=1")
    check(args, before)
