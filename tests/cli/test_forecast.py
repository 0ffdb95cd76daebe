"""``rnnlab forecast`` end to end: train a tiny run on a generated CSV, forecast from its
most recent rows, check timestamps, values, intervals and the plot, and each bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import rnnlab.api as api
from rnnlab import config as cfg
from rnnlab.cli.forecast import forecast, register
from rnnlab.tasks.forecasting import META_FILE, SCALER_FILE

PERIOD = 10
ROWS = 400


def series(rows: int = ROWS + 30) -> pd.DataFrame:
    """Hourly ``y = 50 + 20 sin(2 pi t / 10)``, a past covariate ``x``; rows beyond ``ROWS``
    are the future the forecasts are checked against."""
    t = np.arange(rows, dtype=float)
    return pd.DataFrame(
        {
            "time": pd.date_range("2022-03-01", periods=rows, freq="h"),
            "y": 50.0 + 20.0 * np.sin(2 * np.pi * t / PERIOD),
            "x": np.cos(2 * np.pi * t / PERIOD),
        }
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained Gaussian GRU run (input 20, horizon 5) with hour-of-day calendar features."""
    folder = tmp_path_factory.mktemp("forecast")
    path = folder / "train.csv"
    series().iloc[:ROWS].to_csv(path, index=False)
    config = cfg.from_dict(
        {
            "task": {"name": "forecasting"},
            "data": {
                "path": str(path),
                "targets": ["y"],
                "past_covariates": ["x"],
                "calendar": ["hour"],
                "input_length": 20,
                "horizon": 5,
                "period": PERIOD,
                "instance_norm": "mean",
                "gaussian": True,
            },
            "model": {"cell": "gru", "hidden_size": 24},
            "train": {
                "epochs": 8,
                "batch_size": 32,
                "lr": 0.01,
                "num_threads": 1,
                "device": "cpu",
                "monitor": "mse",
            },
        }
    )
    run = folder / "run"
    api.train(config, run_dir=run, quiet=None)
    # training itself writes the run files (Task.prepare_run_dir), before any forecast
    assert (run / SCALER_FILE).is_file() and (run / META_FILE).is_file()
    return run


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


def recent(tmp_path: Path, end: int = ROWS, rows: int = 30, name: str = "recent.csv") -> Path:
    path = tmp_path / name
    series().iloc[end - rows : end].to_csv(path, index=False)
    return path


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


def test_horizon_option_and_python_call(run_dir: Path, tmp_path: Path) -> None:
    table = forecast(run_dir, recent(tmp_path), horizon=3)
    assert len(table) == 3 and table["time"].iloc[0] == pd.Timestamp("2022-03-01") + pd.Timedelta(
        hours=ROWS
    )
    # only the most recent input_length rows matter
    longer = forecast(run_dir, recent(tmp_path, rows=60, name="longer.csv"), horizon=3)
    assert np.allclose(table["y"], longer["y"])


def test_run_files_are_rebuilt_when_missing(run_dir: Path, tmp_path: Path) -> None:
    before = forecast(run_dir, recent(tmp_path))
    (run_dir / META_FILE).unlink()
    (run_dir / SCALER_FILE).unlink()
    after = forecast(run_dir, recent(tmp_path))
    assert np.allclose(before["y"], after["y"]) and (run_dir / META_FILE).is_file()


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
    assert not (tmp_path / "o.csv").exists()
