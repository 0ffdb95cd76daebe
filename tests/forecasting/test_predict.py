"""``rnnlab.forecasting.predict``: forecasting with a trained run from Python, the horizon,
the checkpoint choice, rebuilt run files and the run-directory errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.forecasting.helpers import ROWS, recent, series, train_run

from rnnlab.errors import RunDirError, UserError
from rnnlab.forecasting import forecast, load_run
from rnnlab.forecasting.run_files import META_FILE, SCALER_FILE, read_run_files
from rnnlab.forecasting.task import ForecastingTask


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(tmp_path_factory.mktemp("predict"))


def test_horizon_option_and_python_call(run_dir: Path, tmp_path: Path) -> None:
    table = forecast(run_dir, recent(tmp_path), horizon=3)
    assert len(table) == 3 and table["time"].iloc[0] == pd.Timestamp("2022-03-01") + pd.Timedelta(
        hours=ROWS
    )
    # only the most recent input_length rows matter
    longer = forecast(run_dir, recent(tmp_path, rows=60, name="longer.csv"), horizon=3)
    assert np.allclose(table["y"], longer["y"])


def test_forecast_is_close_to_the_truth_and_writes_the_table(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    table = forecast(run_dir, recent(tmp_path), out_path=out)
    truth = series().iloc[ROWS : ROWS + 5]["y"].to_numpy()
    assert np.abs(table["y"].to_numpy() - truth).mean() < 4.0
    assert list(pd.read_csv(out).columns) == ["time", "y", "y_lower", "y_upper"]


def test_run_files_are_rebuilt_when_missing(run_dir: Path, tmp_path: Path) -> None:
    before = forecast(run_dir, recent(tmp_path))
    (run_dir / META_FILE).unlink()
    (run_dir / SCALER_FILE).unlink()
    after = forecast(run_dir, recent(tmp_path))
    assert np.allclose(before["y"], after["y"]) and (run_dir / META_FILE).is_file()


def test_load_run_gives_task_metadata_and_scaler(run_dir: Path) -> None:
    task, meta, scaler = load_run(run_dir)
    assert isinstance(task, ForecastingTask)
    assert meta["horizon"] == 5 and meta["input_length"] == 20 and meta["target_names"] == ["y"]
    assert scaler is not None and scaler.names == ("y", "x")
    assert read_run_files(run_dir)[0] == meta


def test_checkpoint_choice(run_dir: Path, tmp_path: Path) -> None:
    best = forecast(run_dir, recent(tmp_path), checkpoint="best")
    last = forecast(run_dir, recent(tmp_path), checkpoint="last")
    assert best.shape == last.shape
    with pytest.raises(UserError, match="checkpoint 'newest' is not allowed"):
        forecast(run_dir, recent(tmp_path), checkpoint="newest")
    # a run without best.pt (stopped before its first evaluation) forecasts with last.pt
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "checkpoints" / "best.pt").unlink()
    assert np.allclose(forecast(copy, recent(tmp_path))["y"], last["y"])


def test_not_a_forecasting_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="is not a run directory"):
        load_run(tmp_path)
    (tmp_path / "config.toml").write_text(
        '[task]\nname = "adding"\n\n[train]\nepochs = 1\n', encoding="utf-8"
    )
    with pytest.raises(RunDirError, match="rnnlab forecast needs a 'forecasting' run"):
        load_run(tmp_path)
