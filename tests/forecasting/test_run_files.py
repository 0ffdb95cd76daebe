"""``rnnlab.forecasting.run_files``: writing and reading ``scaler.json`` and
``forecast.json``, and the resume check of the saved scaler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnlab.data.series import Scaler
from rnnlab.errors import DataError, RunDirError
from rnnlab.forecasting.run_files import (
    META_FILE,
    SCALER_FILE,
    check_saved_scaler,
    read_run_files,
    write_run_files,
)


def scaler(shift: float = 0.0) -> Scaler:
    values = np.arange(12, dtype=float).reshape(6, 2) + shift
    return Scaler().fit(values, ("y", "x"))


def test_write_then_read(tmp_path: Path) -> None:
    written = write_run_files(tmp_path / "run", scaler(), {"scaled": True, "horizon": 3})
    assert [p.name for p in written] == [SCALER_FILE, META_FILE]
    meta, loaded = read_run_files(tmp_path / "run")
    assert meta == {"scaled": True, "horizon": 3}
    assert loaded is not None and loaded.names == ("y", "x")
    assert np.allclose(loaded.shift, scaler().shift)


def test_unscaled_run_has_no_scaler_file(tmp_path: Path) -> None:
    written = write_run_files(tmp_path, None, {"scaled": False})
    assert [p.name for p in written] == [META_FILE]
    assert read_run_files(tmp_path) == ({"scaled": False}, None)


def test_missing_or_bad_files_are_run_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"forecast\.json is missing"):
        read_run_files(tmp_path)
    (tmp_path / META_FILE).write_text("{oops", encoding="utf-8")
    with pytest.raises(RunDirError, match="is not valid JSON"):
        read_run_files(tmp_path)
    (tmp_path / META_FILE).write_text('{"scaled": true}', encoding="utf-8")
    with pytest.raises(RunDirError):
        read_run_files(tmp_path)


def test_saved_scaler_must_match_on_resume(tmp_path: Path) -> None:
    check_saved_scaler(tmp_path / SCALER_FILE, scaler())  # nothing saved: nothing to check
    scaler().save(tmp_path / SCALER_FILE)
    check_saved_scaler(tmp_path / SCALER_FILE, scaler())
    check_saved_scaler(tmp_path / SCALER_FILE, None)
    with pytest.raises(DataError, match="the training data changed"):
        check_saved_scaler(tmp_path / SCALER_FILE, scaler(shift=1.0))
