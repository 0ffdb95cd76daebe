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
        ("drop", r"columns of .* differ from training: missing \['x'\] \(training columns"),
        (
            "short",
            r"has 10 rows of history \(up to the last row with targets\); the model reads the "
            r"last input_length=20",
        ),
        ("text", r"non-numeric value 'oops' in column 'x' at row 25 of .*bad.csv"),
        ("nan", r"the covariate 'x' is missing at 2022-03-17 11:00 \(row 25\)"),
        (
            "last",
            r"the target 'y' is missing at 2022-03-17 15:00 \(the last row\); the run does "
            r"not fill gaps \(data.fill is unset\): give the value or train with data.fill",
        ),
        ("gap", r"2 timestamps are missing.*2022-03-17 10:00, 2022-03-17 11:00"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    run_dir: Path, tmp_path: Path, edit: str, message: str
) -> None:
    frame = series().iloc[ROWS - 30 : ROWS].reset_index(drop=True)
    if edit == "drop":
        frame = frame.drop(columns=["x"])
    elif edit == "last":
        frame.loc[29, "y"] = np.nan
    elif edit == "gap":
        frame = frame.drop(index=[24, 25])
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


def test_out_or_plot_naming_a_directory(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    code, output = invoke_error(
        ["forecast", str(run_dir), "--input", str(recent(tmp_path)), "--out", str(folder)]
    )
    lines = output.strip().splitlines()
    assert code == 2 and len(lines) == 1, output
    assert f"{folder} is a directory; expected a file path" in lines[0], lines[0]
    out = tmp_path / "f.csv"
    code, output = invoke_error(
        ["forecast", str(run_dir), "--input", str(recent(tmp_path)), "--out", str(out),
         "--plot", str(folder)]
    )  # fmt: skip
    lines = output.strip().splitlines()
    assert code == 2 and len(lines) == 1, output
    assert f"--plot {folder} is a directory; expected a file path" in lines[0], lines[0]
    assert not out.exists() and list(folder.iterdir()) == []  # nothing written


def test_out_under_a_file_or_a_new_folder(run_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "taken.csv"
    blocker.write_text("x\n", encoding="utf-8")
    code, output = invoke_error(
        ["forecast", str(run_dir), "--input", str(recent(tmp_path)), "--out",
         str(blocker / "f.csv")]
    )  # fmt: skip
    lines = output.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"{blocker} is a file, not a folder" in lines[0]
    # a folder that does not exist yet is created, as for every file rnnlab writes
    out = tmp_path / "new" / "sub" / "f.csv"
    code, output = invoke_error(
        ["forecast", str(run_dir), "--input", str(recent(tmp_path)), "--out", str(out)]
    )
    assert code == 0 and out.is_file(), output


def test_notices_go_to_stderr(run_dir: Path, tmp_path: Path) -> None:
    frame = series().iloc[ROWS - 30 : ROWS].reset_index(drop=True)
    frame["z"] = 1.0  # the training CSV's format with a column the run does not use
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(
        cli(), ["forecast", str(run_dir), "--input", str(path), "--out", str(tmp_path / "f.csv")]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"^notice: .*wide.csv: ignored the columns \['z'\]", result.stderr, re.M)
    assert "forecast: 5 steps (2022-03-17 16:00:00" in result.stdout
