"""The forecasting task: config checks, data from CSV or named series, baselines in every
evaluation, run files, bad input, and a tiny model that learns a noiseless sine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import rnnlab.api as api
from rnnlab import config as cfg
from rnnlab.data.series import Scaler
from rnnlab.errors import ConfigError, DataError
from rnnlab.forecasting.baselines import (
    LinearForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
)
from rnnlab.forecasting.run_files import META_FILE, SCALER_FILE
from rnnlab.forecasting.task import ForecastingTask, WindowBatches
from rnnlab.tasks import TASKS

REPO = Path(__file__).resolve().parents[2]


def shared_root() -> Path | None:
    for root in (REPO / "shared" / "data", REPO.parent / "shared" / "data"):
        if (root / "ett" / "ETTh1.csv").is_file():
            return root
    return None


def sine_csv(tmp_path: Path, rows: int = 400, name: str = "sine.csv") -> Path:
    """Hourly ``y = 10 + 3 sin(2 pi t / 10)`` and a past covariate ``x = cos(...)``."""
    t = np.arange(rows, dtype=float)
    frame = pd.DataFrame(
        {
            "time": pd.date_range("2021-01-01", periods=rows, freq="h"),
            "y": 10.0 + 3.0 * np.sin(2 * np.pi * t / 10),
            "x": np.cos(2 * np.pi * t / 10),
        }
    )
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def config(path: Path, *overrides: str) -> cfg.ExperimentConfig:
    raw = {
        "task": {"name": "forecasting"},
        "data": {
            "path": str(path),
            "targets": ["y"],
            "past_covariates": ["x"],
            "input_length": 24,
            "horizon": 6,
            "split": "fraction",
            "train_fraction": 0.6,
            "valid_fraction": 0.2,
            "test_fraction": 0.2,
        },
        "model": {"cell": "gru", "hidden_size": 16},
        "train": {
            "epochs": 1,
            "batch_size": 32,
            "lr": 0.01,
            "num_threads": 1,
            "device": "cpu",
            "monitor": "mse",
        },
    }
    return cfg.from_dict(cfg.apply_overrides(raw, overrides))


def make(path: Path, *overrides: str) -> ForecastingTask:
    task = TASKS.get("forecasting")(config(path, *overrides))
    assert isinstance(task, ForecastingTask)
    return task


def test_data_step_and_evaluate_with_baselines_on_the_same_windows(tmp_path: Path) -> None:
    task = make(sine_csv(tmp_path), "data.calendar=['hour']")
    data = task.build_data()
    # inputs: y, x, hour_sin, hour_cos; future: the two calendar columns
    assert data.spec.num_features == 4 and data.spec.output_size == 1
    assert data.spec.extra == {"future_size": 2, "horizon": 6}
    # train rows [0, 240): 240 - 24 - 6 + 1 windows; valid targets [240, 320): 80 - 6 + 1
    assert data.train.size == 211
    assert isinstance(data.valid, WindowBatches) and len(list(data.valid)) == 3
    model = task.build_model(data.spec)
    x, y, f = next(iter(data.train.batches()))
    assert x.shape == (32, 24, 4) and y.shape == (32, 6, 1) and f.shape == (32, 6, 2)
    loss, state, metrics = task.step(model, (x, y, f), None)
    assert loss.dim() == 0 and state is None and metrics["count"] == 32

    result = task.evaluate(model.eval(), data.valid)
    assert result["loss"] == result["mse"]
    for key in ("mae", "mse_original", "mae_original", "smape", "mase"):
        assert key in result
    windows = task.prepare().part("valid")
    vx, vy, _ = windows.tensors()
    naive = NaiveForecaster(6, 1)(vx)
    assert result["baseline_naive_mse"] == pytest.approx(float(((naive - vy) ** 2).mean()))
    seasonal = SeasonalNaiveForecaster(6, 24, 1)(vx)  # hourly: period 24
    assert result["baseline_seasonal_naive_mae"] == pytest.approx(
        float((seasonal - vy).abs().mean())
    )
    linear = LinearForecaster(24, 6, output_size=1).fit(task.prepare().train)(vx)
    assert result["baseline_linear_mse"] == pytest.approx(float(((linear - vy) ** 2).mean()))
    # a pure sine is exactly linear in its past: the least-squares baseline is near perfect
    assert result["baseline_linear_mse"] < 1e-6
    # MSE in original units is the scaled MSE times the target's variance
    scale = task.prepare().scaler.scale[0]  # type: ignore[union-attr]
    assert result["baseline_naive_mse_original"] == pytest.approx(
        result["baseline_naive_mse"] * scale**2
    )


def test_scaler_is_fitted_on_training_rows_only_and_saved(tmp_path: Path) -> None:
    path = sine_csv(tmp_path)
    task = make(path)
    fd = task.prepare()
    values = pd.read_csv(path)[["y", "x"]].to_numpy()
    train = values[:240]
    assert fd.scaler is not None
    assert np.allclose(fd.scaler.shift, train.mean(axis=0))
    assert np.allclose(fd.scaler.scale, train.std(axis=0))
    # a change after the training rows leaves the scaler unchanged (no leakage)
    frame = pd.read_csv(path)
    frame.loc[240:, "y"] += 1000.0
    frame.to_csv(tmp_path / "shifted.csv", index=False)
    other = make(tmp_path / "shifted.csv").prepare()
    assert np.allclose(other.scaler.shift, fd.scaler.shift)  # type: ignore[union-attr]

    written = task.write_run_files(tmp_path / "run")
    assert sorted(p.name for p in written) == sorted([SCALER_FILE, META_FILE])
    loaded = Scaler.load(tmp_path / "run" / SCALER_FILE)
    assert np.allclose(loaded.shift, fd.scaler.shift) and loaded.names == ("y", "x")
    meta = json.loads((tmp_path / "run" / META_FILE).read_text())
    assert meta["target_names"] == ["y"] and meta["past_names"] == ["x"]
    assert meta["freq"] == "h" and meta["input_length"] == 24 and meta["horizon"] == 6


def test_gaussian_head_reports_nll_and_coverage(tmp_path: Path) -> None:
    task = make(sine_csv(tmp_path), "data.gaussian=true")
    data = task.build_data()
    model = task.build_model(data.spec)
    loss, _, _ = task.step(model, next(iter(data.train.batches())), None)
    assert torch.isfinite(loss)
    result = task.evaluate(model.eval(), data.valid)
    assert result["loss"] == result["nll"] and 0.0 <= result["coverage"] <= 1.0


def test_seq2seq_with_teacher_forcing_and_any_cell(tmp_path: Path) -> None:
    task = make(
        sine_csv(tmp_path),
        "data.decoder=seq2seq",
        "data.teacher_forcing=0.5",
        "model.cell=lstm",
        "model.num_layers=2",
    )
    data = task.build_data()
    model = task.build_model(data.spec)
    assert type(model.encoder).__name__ == "LSTM" and model.encoder.num_layers == 2
    loss, _, _ = task.step(model.train(), next(iter(data.train.batches())), None)
    loss.backward()
    assert torch.isfinite(loss)


def test_channel_independent_model_reads_each_channel_alone(tmp_path: Path) -> None:
    task = make(
        sine_csv(tmp_path),
        "data.targets=['y', 'x']",
        "data.past_covariates=[]",
        "data.channel_independent=true",
        "data.gaussian=true",
    )
    data = task.build_data()
    assert data.spec.num_features == 2 and data.spec.output_size == 2
    model = task.build_model(data.spec).eval()
    x, y, f = next(iter(data.train.batches()))
    mean, var = model(x, f)
    assert mean.shape == y.shape == var.shape == (32, 6, 2)
    changed = x.clone()
    changed[..., 1] += torch.randn_like(changed[..., 1])
    mean2, _ = model(changed, f)
    assert torch.equal(mean2[..., 0], mean[..., 0])  # channel 0 never sees channel 1
    assert not torch.equal(mean2[..., 1], mean[..., 1])
    # one shared univariate forecaster: channel 1 alone gives the same forecast
    alone = model.forecaster(x[..., 1:])  # type: ignore[operator]
    assert torch.allclose(alone[0][..., 0], mean[..., 1], atol=1e-6)
    loss, _, _ = task.step(model.train(), (x, y, f), None)
    assert torch.isfinite(loss)


def test_tiny_model_learns_a_noiseless_sine(tmp_path: Path) -> None:
    path = sine_csv(tmp_path)
    conf = config(path, "train.epochs=6", "data.instance_norm=mean", "model.hidden_size=24")
    result = api.train(conf, run_dir=tmp_path / "run", quiet=None)
    test = result.test
    # the naive forecast of a period-10 sine is poor; the trained model is far better
    assert test["baseline_naive_mse"] > 0.5
    assert test["mse"] < 0.1 * test["baseline_naive_mse"]
    assert test["mase"] < 0.5


def test_split_by_dates_and_ett(tmp_path: Path) -> None:
    task = make(
        sine_csv(tmp_path),
        "data.split=dates",
        "data.valid_start='2021-01-11'",
        "data.test_start='2021-01-14'",
    )
    split = task.prepare().split
    assert split.train == (0, 240) and split.valid == (240, 312) and split.test == (312, 400)
    root = shared_root()
    if root is None:
        pytest.skip("ETTh1.csv is not under shared/data")
    ett = TASKS.get("forecasting")(
        cfg.from_dict(
            {
                "task": {"name": "forecasting"},
                "data": {"dataset": "etth1", "root": str(root), "split": "ett", "horizon": 96},
                "train": {"epochs": 1},
            }
        )
    ).prepare()
    assert (len(ett.train), len(ett.valid), len(ett.test)) == (8449, 2785, 2785)  # type: ignore[arg-type]
    assert ett.output_size == 7


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.dataset=etth1"], "exactly one of data.dataset and data.path"),
        (["data.path=none"], "exactly one of data.dataset and data.path"),
        (["data.path=none", "data.dataset=ettx"], "unknown series"),
        (["data.teacher_forcing=0.5"], "needs data.decoder='seq2seq'"),
        (["data.split=dates"], "needs data.valid_start and data.test_start"),
        (["data.horizon=0"], "data.horizon"),
        (["data.channel_independent=true"], "remove data.past_covariates"),
    ],
)
def test_config_errors(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(sine_csv(tmp_path), *overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.seq_len=10"], "train.seq_len=10 is not used"),
        (["model.input_projection=8"], "model.input_projection=8 is not supported"),
        (["data.decoder=seq2seq", "model.bidirectional=true"], "needs model.bidirectional"),
    ],
)
def test_task_rejects_settings(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(sine_csv(tmp_path), *overrides)


def bad_csv(tmp_path: Path, edit: str) -> Path:
    path = sine_csv(tmp_path)
    frame = pd.read_csv(path)
    if edit == "nan":
        frame.loc[5, "y"] = np.nan
    elif edit == "text":
        frame["y"] = frame["y"].astype(object)
        frame.loc[7, "y"] = "n/a?"
    elif edit == "unsorted":
        frame.loc[[3, 4]] = frame.loc[[4, 3]].to_numpy()
    elif edit == "duplicate":
        frame.loc[9, "time"] = frame.loc[8, "time"]
    elif edit == "short":
        frame = frame.iloc[:40]
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("nan", r"missing value in column 'y' at row 5"),
        ("text", r"non-numeric value 'n/a\?' in column 'y' at row 7"),
        ("unsorted", r"not sorted: row 4"),
        ("duplicate", r"duplicate timestamp .* at rows 8 and 9"),
        ("short", r"fewer than input_length \+ horizon = 24 \+ 6 = 30"),
    ],
)
def test_bad_series_is_a_one_line_data_error(tmp_path: Path, edit: str, message: str) -> None:
    task = make(bad_csv(tmp_path, edit))
    with pytest.raises(DataError, match=message) as info:
        task.build_data()
    assert "\n" not in str(info.value)


def test_missing_file_and_column(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="series file not found"):
        make(tmp_path / "nope.csv").build_data()
    with pytest.raises(DataError, match=r"column 'z' not found .* columns found: \['time'"):
        make(sine_csv(tmp_path), "data.targets=['z']").build_data()


def test_fill_interpolates_on_request(tmp_path: Path) -> None:
    task = make(bad_csv(tmp_path, "nan"), "data.fill=interpolate")
    assert task.prepare().series.report.filled == {"y": 1}


def test_shipped_recipes_validate() -> None:
    for name in ("etth1-gru", "etth1-gru-192", "etth1-gru-336", "etth1-gru-720"):
        loaded = cfg.load(name)
        assert loaded.task.name == "forecasting" and loaded.data.input_length == 96  # type: ignore[attr-defined]
    assert cfg.load("etth1-gru-720").data.horizon == 720  # type: ignore[attr-defined]
    for name in ("airline-gru", "sunspots-gru"):
        loaded = cfg.load(name)
        assert loaded.data.targets is not None and len(loaded.data.targets) == 1  # type: ignore[attr-defined]
