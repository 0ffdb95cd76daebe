"""``rnnlab forecast`` on a trained tiny ``segments`` run (generated CSV, a few steps): the
command's table, and the run's ``data.fill = "interpolate"`` applied to recent rows with a
missing value (a notice naming the policy, the interpolated value used, not a refusal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from tests.forecasting.helpers import ROWS, recent, series
from typer.testing import CliRunner

import rnnlab.api as api
from rnnlab import config as cfg
from rnnlab.cli.forecast import register
from rnnlab.forecasting import forecast


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("segments")
    path = folder / "train.csv"
    series().iloc[:ROWS][["time", "y"]].to_csv(path, index=False)
    config = cfg.from_dict(
        {
            "task": {"name": "forecasting"},
            "data": {
                "path": str(path),
                "targets": ["y"],
                "fill": "interpolate",
                "period": 10,
                "input_length": 20,
                "horizon": 10,
                "decoder": "segments",
                "segment_length": 5,
                "instance_norm": "last",
                "loss": "mae",
            },
            "model": {"cell": "gru", "hidden_size": 16},
            "train": {"epochs": 2, "batch_size": 64, "lr": 0.01, "num_threads": 1},
        }
    )
    run = folder / "run"
    api.train(config, run_dir=run, quiet=None)
    return run


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


def test_forecast_command_on_a_segments_run(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "forecast.csv"
    result = CliRunner().invoke(
        cli(), ["forecast", str(run_dir), "--input", str(recent(tmp_path)), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "forecast: 10 steps" in result.output
    table = pd.read_csv(out, parse_dates=["time"])
    assert list(table.columns) == ["time", "y"]
    truth = series().iloc[ROWS : ROWS + 10]
    assert (table["time"].to_numpy() == truth["time"].to_numpy()).all()
    assert np.isfinite(table["y"]).all()


def test_missing_recent_value_is_interpolated_by_the_runs_fill(
    run_dir: Path, tmp_path: Path
) -> None:
    frame = series().iloc[ROWS - 30 : ROWS].reset_index(drop=True)[["time", "y"]]
    full = forecast(run_dir, _write(frame, tmp_path / "full.csv"))
    truth = frame.loc[27, "y"]
    frame.loc[27, "y"] = np.nan  # inside the last input window (the last 20 rows)
    table = forecast(run_dir, _write(frame, tmp_path / "gap.csv"))
    notices = table.attrs["notices"]
    assert len(notices) == 1 and "interpolate" in notices[0] and "data.fill" in notices[0]
    # a smooth sine: the linearly interpolated value is close to the true one, so the
    # forecast moves little
    assert np.isfinite(table["y"]).all()
    moved = np.abs(table["y"].to_numpy() - full["y"].to_numpy()).max()
    assert moved < 0.2 * abs(truth - frame["y"].mean()) + 1.0
    # through the command too: exit 0 and the notice on stderr
    result = CliRunner().invoke(
        cli(), ["forecast", str(run_dir), "--input", str(tmp_path / "gap.csv"),
                "--out", str(tmp_path / "f.csv")]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "notice:" in result.output and "interpolate" in result.output


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path
