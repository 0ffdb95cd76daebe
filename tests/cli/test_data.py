"""``rnnlab data list | fetch`` through the real command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _rnnlab(*args: str, env_root: Path) -> subprocess.CompletedProcess[str]:
    env = {"RNNLAB_CACHE": str(env_root), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "rnnlab", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_data_list_shows_every_named_set(tmp_path: Path) -> None:
    result = _rnnlab("data", "list", env_root=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("ptb", "ptb-char", "tinyshakespeare", "etth1", "airline", "sunspots", "fsdd"):
        assert name in result.stdout


def test_data_fetch_unknown_name_is_a_one_line_error(tmp_path: Path) -> None:
    result = _rnnlab("data", "fetch", "nosuch", env_root=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown data set 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr
