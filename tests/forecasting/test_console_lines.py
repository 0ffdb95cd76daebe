"""``rnnlab train`` on a forecasting CSV prints compact evaluation lines (the model's MSE, MAE,
MASE and two baselines' MSE) while ``metrics.jsonl`` keeps every metric."""

from __future__ import annotations

import json
from pathlib import Path

from tests.forecasting.helpers import ROWS, series
from typer.testing import CliRunner

from rnnlab.cli.main import app

SHOWN = {"mse", "mae", "mase", "linear_mse", "snaive_mse"}


def shown_keys(line: str) -> set[str]:
    words = line.split(": ", 1)[1].split()
    return set(words[0::2])


def test_train_lines_are_compact_and_metrics_jsonl_keeps_all(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    series().iloc[:ROWS][["time", "y"]].to_csv(path, index=False)
    config = tmp_path / "mine.toml"
    config.write_text(
        "[task]\nname = 'forecasting'\n"
        f"[data]\npath = '{path}'\ntime_column = 'time'\ntargets = ['y']\nperiod = 10\n"
        "input_length = 20\nhorizon = 10\n"
        "[model]\ncell = 'gru'\nhidden_size = 8\n"
        "[train]\nepochs = 1\nbatch_size = 64\nnum_threads = 1\n"
    )
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config), "--run-dir", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if " valid: " in line or "test" in line]
    evaluations = [line for line in lines if line.startswith(("epoch", "test ("))]
    assert len(evaluations) >= 2, result.output
    for line in evaluations:
        assert shown_keys(line) == SHOWN, line
        assert len(line) < 120, line
    records = [json.loads(row) for row in (run / "metrics.jsonl").read_text().splitlines()]
    logged = set().union(*(set(record) for record in records))
    assert {"smape", "baseline_naive_mse", "baseline_linear_mae", "mse_original"} <= logged
