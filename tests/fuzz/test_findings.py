"""Defects the fuzz suite found, one deterministic case each, all fixed: each case must now
exit 0 or 2 with one line and no traceback, leaving earlier files byte-identical."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tomli_w
import torch
from tests.forecasting.helpers import series
from tests.fuzz.conftest import ADDING
from tests.fuzz.helpers import check, copy_run, sets, snapshot

from rnnlab import config as cfg


def test_a_section_given_as_a_value_is_one_line(tmp_path: Path) -> None:
    """``task = 1`` raised AttributeError in config/experiment.py (fixed)."""
    raw = cfg.load("adding", ADDING).to_dict()
    raw["task"] = 1
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(raw))
    result = check(["train", path, "--run-dir", tmp_path / "run"], snapshot(path))
    assert result.exit_code == 2 and "task" in result.stderr


def test_several_config_errors_are_one_line(tmp_path: Path) -> None:
    """Two bad keys printed two lines, the second without ``error:`` (fixed in cli/guard.py)."""
    args = ["train", "adding", *sets(*ADDING, "train.lrr=1", "model.hiden=3")]
    result = check([*args, "--run-dir", tmp_path / "run"], {})
    assert result.exit_code == 2
    assert "train.lrr" in result.stderr and "model.hiden" in result.stderr


def test_resume_from_a_checkpoint_missing_a_key(tmp_path: Path, adding_run: Path) -> None:
    run = copy_run(adding_run, tmp_path)
    last = run / "checkpoints" / "last.pt"
    payload = torch.load(last, weights_only=True)
    del payload["task_state"]
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    last.write_bytes(buffer.getvalue())
    check(["train", "--resume", run, "--quiet", *sets("train.epochs=2")], snapshot(run))


def test_training_on_a_constant_target(tmp_path: Path, forecast_run: Path) -> None:
    frame = series().iloc[:200]
    frame["y"] = np.zeros(len(frame))
    source = tmp_path / "constant.csv"
    frame.to_csv(source, index=False)
    args = ["train", forecast_run / "config.toml", "--quiet", "--run-dir", tmp_path / "run"]
    args += sets(f"data.path={source}", "train.max_steps=2", "train.epochs=1")
    check(args, snapshot(source, forecast_run))
