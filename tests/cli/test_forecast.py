"""``rnnlab forecast`` end to end: train a tiny run on a generated CSV, forecast from its
most recent rows through the command, check timestamps, values, intervals and the plot, and
each bad input (one line, exit code 2). The Python call is tested in
``tests/forecasting/test_predict.py``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from tests.forecasting.helpers import ROWS, recent, series, train_run
from typer.testing import CliRunner

from rnnlab.cli.forecast import register
from rnnlab.forecasting.run_files import META_FILE, SCALER_FILE


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(tmp_path_factory.mktemp("forecast"))


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


def test_forecast_command_end_to_end(run_dir: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "forecast.csv", tmp_path / "forecast.png"
    result = CliRunner().invoke(
        cli(),
        ["forecast", str(run_dir), "--input", str(recent(tmp_path)), "--out", str(out),
         "--plot", str(plot)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "forecast: 5 steps" in result.output
    table = pd.read_csv(out, parse_dates=["time"])
    assert list(table.columns) == ["time", "y", "y_lower", "y_upper"]
    truth = series().iloc[ROWS : ROWS + 5]
    assert (table["time"].to_numpy() == truth["time"].to_numpy()).all()
    # the model learned the sine: its forecast in original units is close to the truth
    error = np.abs(table["y"].to_numpy() - truth["y"].to_numpy())
    assert error.mean() < 4.0, error  # the amplitude is 20; naive errs by ~12 on average
    assert (table["y_lower"] < table["y"]).all() and (table["y"] < table["y_upper"]).all()
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / SCALER_FILE).is_file() and (run_dir / META_FILE).is_file()


def invoke_error(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli(), args)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("drop", r"columns of .* differ from training: missing \['x'\], unexpected \[\]"),
        ("extra", r"differ from training: missing \[\], unexpected \['z'\]"),
        (
            "short",
            r"has 10 rows with every target filled; the model reads the last input_length=20",
        ),
        ("text", r"non-numeric value 'oops' in column 'x'"),
        ("nan", r"missing value in column 'x'"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    run_dir: Path, tmp_path: Path, edit: str, message: str
) -> None:
    frame = series().iloc[ROWS - 30 : ROWS].reset_index(drop=True)
    if edit == "drop":
        frame = frame.drop(columns=["x"])
    elif edit == "extra":
        frame["z"] = 1.0
    elif edit == "short":
        frame = frame.iloc[-10:]
    elif edit == "text":
        frame["x"] = frame["x"].astype(object)
        frame.loc[25, "x"] = "oops"
    elif edit == "nan":
        frame.loc[25, "x"] = np.nan
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    code, output = invoke_error(
        ["forecast", str(run_dir), "--input", str(path), "--out", str(tmp_path / "o.csv")]
    )
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert re.search(message, lines[0]), lines[0]


def test_other_errors(run_dir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o.csv")
    code, output = invoke_error(
        ["forecast", str(run_dir), "--input", str(recent(tmp_path)), "--out", out,
         "--horizon", "9"]
    )  # fmt: skip
    assert code == 2 and "forecasts 1 to 5" in output
    code, output = invoke_error(
        ["forecast", str(run_dir), "--input", str(tmp_path / "none.csv"), "--out", out]
    )
    assert code == 2 and "forecast input file not found" in output
    code, output = invoke_error(
        ["forecast", str(tmp_path), "--input", str(recent(tmp_path)), "--out", out]
    )
    assert code == 2 and "is not a run directory" in output
    code, output = invoke_error(
        ["forecast", str(run_dir), "--input", str(recent(tmp_path)), "--out", out,
         "--checkpoint", "newest"]
    )  # fmt: skip
    assert code == 2 and "checkpoint 'newest' is not allowed" in output
    assert not (tmp_path / "o.csv").exists()
