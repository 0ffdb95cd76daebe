"""Storage faults and damaged files: a full disk, a read-only run directory, a file where the
run directory should be, a checkpoint holding pickled objects, temporaries left by a kill."""

from __future__ import annotations

import errno
import io
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.training.helpers import TINY, env, run_cli, tiny_config

from rnnlab import api
from rnnlab import io as rnnlab_io
from rnnlab.errors import (
    CheckpointError,
    ConfigError,
    DiskFullError,
    NotWritableError,
    RunDirError,
)
from rnnlab.training import load_checkpoint, save_checkpoint
from rnnlab.training.metrics_log import MetricsFile

REAL_SAVE = torch.save


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def failing_save(code: int, when: Callable[[dict[str, Any]], bool]) -> Callable[..., None]:
    """A ``torch.save`` that writes part of the file, then fails with ``code`` when
    ``when(payload)`` holds (the payloads it lets through are saved for real)."""

    def save(obj: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        if when(obj):
            handle.write(b"partial")
            raise OSError(code, os.strerror(code))
        REAL_SAVE(obj, handle, *args, **kwargs)

    return save


def temporaries(run: Path) -> list[str]:
    return [p.name for p in run.rglob("*") if rnnlab_io.temporary_target(p.name)]


# ------------------------------------------------------------------------------ disk full


def test_disk_full_writing_a_checkpoint_stops_cleanly_and_the_run_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    full = failing_save(errno.ENOSPC, lambda p: p.get("kind") == "last" and p["step"] == 6)
    monkeypatch.setattr(torch, "save", full)
    config = tiny_config("train.checkpoint_every=3")
    with pytest.raises(DiskFullError) as caught:
        api.train(config, run_dir=run, quiet=None)
    message = str(caught.value)
    assert message == (
        f"no space left on the device holding {run} (writing checkpoints/last.pt); the last "
        f"good checkpoint checkpoints/last.pt is intact: free space and resume with rnnlab "
        f"train --resume {run}"
    )
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4  # end of epoch 1
    assert temporaries(run) == []  # the atomic write removed its temporary
    assert not (run / "run.lock").exists()

    monkeypatch.setattr(torch, "save", REAL_SAVE)
    assert api.train(resume=run, quiet=None).status == "completed"


def test_disk_full_writing_metrics_and_before_any_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = MetricsFile.write

    def write(self: MetricsFile, record: dict[str, Any]) -> None:
        if record["kind"] == "eval":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, record)

    monkeypatch.setattr(MetricsFile, "write", write)
    run = tmp_path / "run"
    with pytest.raises(DiskFullError, match=r"\(writing metrics\.jsonl\); no checkpoint was"):
        api.train(tiny_config(), run_dir=run, quiet=None)
    quota = failing_save(errno.EDQUOT, lambda p: True)
    monkeypatch.setattr(MetricsFile, "write", real_write)
    monkeypatch.setattr(torch, "save", quota)
    with pytest.raises(DiskFullError, match=rf"start the run again \(remove {tmp_path / 'b'}"):
        api.train(tiny_config(), run_dir=tmp_path / "b", quiet=None)


def test_other_write_errors_are_not_disguised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, "save", failing_save(errno.EIO, lambda p: True))
    with pytest.raises(OSError, match="Input/output error") as caught:
        api.train(tiny_config(), run_dir=tmp_path / "run", quiet=None)
    assert not isinstance(caught.value, RunDirError)


# ------------------------------------------------------------------------- not writable


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
def test_resume_of_a_read_only_run_directory_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    run = tmp_path / "run"
    api.train(tiny_config("train.epochs=1"), run_dir=run, quiet=None)
    before = snapshot(run)

    def refuse(path: Any, write: Any) -> Path:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(rnnlab_io, "atomic_write", refuse)
    monkeypatch.setattr("rnnlab.training.checkpoint.atomic_write", refuse)
    reason = "read-only file system" if code == errno.EROFS else "permission denied"
    with pytest.raises(NotWritableError, match=rf"^run directory {run} is not writable \({reason}"):
        api.train(resume=run, overrides=["train.epochs=2"], quiet=None)
    assert snapshot(run) == before


def test_read_only_run_directory_is_refused_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    api.train(tiny_config("train.epochs=1"), run_dir=run, quiet=None)
    before = snapshot(run)
    real_access = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:
        if mode == os.W_OK and Path(path).is_relative_to(tmp_path):
            return False  # what a read-only mount answers, even to root
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(NotWritableError, match=rf"run directory {run} is not writable .*nothing"):
        api.train(resume=run, overrides=["train.epochs=2"], quiet=None)
    assert snapshot(run) == before
    with pytest.raises(NotWritableError, match=rf"{tmp_path} is not writable"):
        api.train(tiny_config(), run_dir=tmp_path / "new", quiet=None)
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------- a file, not a directory


def test_run_dir_or_output_dir_that_is_a_file(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("notes")
    with pytest.raises(RunDirError, match=rf"^run directory {taken} is a file; choose another"):
        api.train(tiny_config(), run_dir=taken, quiet=None)
    with pytest.raises(RunDirError, match=rf"{taken} is a file"):
        api.train(tiny_config(), run_dir=taken / "sub" / "run", quiet=None)
    with pytest.raises(ConfigError, match=r"output\.dir: .* is a file"):
        api.train(tiny_config(f"output.dir={taken}", "output.name=x"), quiet=None)
    with pytest.raises(ConfigError, match=r"output\.dir: .* is a file"):
        api.train(tiny_config(f"output.dir={taken}"), quiet=None)
    assert taken.read_text() == "notes"


# ----------------------------------------------------------- checkpoints holding objects


class Payload:
    """A class a checkpoint must never bring back to life."""


class Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


def pickled_files(folder: Path) -> dict[str, Path]:
    files = {}
    for name, write in {
        "torch_zip": lambda f: torch.save({"format": "rnnlab-checkpoint", "x": Payload()}, f),
        "torch_legacy": lambda f: torch.save(
            {"x": Payload()}, f, _use_new_zipfile_serialization=False
        ),
        "pickle2": lambda f: pickle.dump({"x": Exploit()}, f, protocol=2),
        "pickle4": lambda f: pickle.dump({"x": Exploit()}, f, protocol=4),
        "pickle5": lambda f: pickle.dump([1, {"fn": print}], f, protocol=5),
    }.items():
        path = folder / f"{name}.pt"
        with path.open("wb") as handle:
            write(handle)
        files[name] = path
    return files


def test_checkpoint_holding_pickled_objects_is_refused_as_such(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    for name, path in pickled_files(tmp_path).items():
        with pytest.raises(CheckpointError) as caught:
            load_checkpoint(path)
        message = str(caught.value)
        assert message.startswith(f"checkpoint {path} holds pickled Python objects ("), name
        assert "refuses to load them" in message and "weights_only=True" in message
        assert "corrupted" not in message and "\n" not in message and "\x1b" not in message
    assert [str(w.message) for w in recwarn] == []  # torch's warnings do not leak


def test_damaged_checkpoints_stay_truncated_or_corrupted(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    good = io.BytesIO()
    torch.save({"format": "rnnlab-checkpoint", "w": torch.ones(3)}, good)
    legacy = io.BytesIO()
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    plain = pickle.dumps({"a": [1, 2, 3], "b": "text" * 20}, protocol=4)
    damaged = {
        "zip_half": good.getvalue()[: len(good.getvalue()) // 2],
        "legacy_half": legacy.getvalue()[: len(legacy.getvalue()) // 2],
        "pickle_cut": plain[: len(plain) - 3],
        "objects_cut": pickle.dumps({"x": Exploit()}, protocol=4)[:-9],
        "garbage": b"\x00not a checkpoint" * 10,
        "empty": b"",
    }
    for name, data in damaged.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=r"is truncated or corrupted") as caught:
            load_checkpoint(path)
        assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value), name
        assert path.read_bytes() == data
    assert [str(w.message) for w in recwarn] == []


def test_evaluate_refuses_a_pickled_checkpoint_in_one_line_without_warnings(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    api.train(tiny_config("train.epochs=1"), run_dir=run, quiet=None)
    for which in ("best", "last"):
        with (run / "checkpoints" / f"{which}.pt").open("wb") as handle:
            pickle.dump({"x": Exploit()}, handle, protocol=4)
    shown = run_cli("evaluate", str(run), cwd=tmp_path)
    assert shown.returncode == 2
    assert shown.stderr.startswith(f"error: checkpoint {run / 'checkpoints' / 'best.pt'} holds ")
    assert len(shown.stderr.strip().splitlines()) == 1, shown.stderr  # no torch warning
    assert "pwned" not in shown.stdout + shown.stderr


# ------------------------------------------------------------- stale atomic temporaries


def test_atomic_write_temporaries_match_the_pattern_cleaned_up(tmp_path: Path) -> None:
    seen: list[str] = []

    def write(handle: Any) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())
        handle.write(b"x")

    rnnlab_io.atomic_write(tmp_path / "last.pt", write)
    assert len(seen) == 1 and rnnlab_io.temporary_target(seen[0]) == "last.pt"
    for name in ("last.pt", ".last.pt.tmp", "notes.tmp", ".last.pt.abc.tmp", ".x.ABCDEFGH.tmp"):
        assert rnnlab_io.temporary_target(name) is None, name


def test_resume_removes_stale_temporaries_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    api.train(tiny_config("train.epochs=1"), run_dir=run, quiet=None)
    stale = [run / "checkpoints" / ".last.pt.k2j4_x9a.tmp", run / ".metrics.jsonl.abcd1234.tmp"]
    kept = [
        run / "checkpoints" / ".last.pt.tmp",
        run / "checkpoints" / "notes.tmp",
        run / "checkpoints" / ".last.pt.abc.tmp",
        run / "mine.txt",
    ]
    for path in [*stale, *kept]:
        path.write_bytes(b"")
    (run / "checkpoints" / ".best.pt.zzzzzzzz.tmp").mkdir()  # a folder: not a temporary
    capsys.readouterr()
    api.train(resume=run, overrides=["train.epochs=2"], quiet=True)
    assert not any(p.exists() for p in stale)
    assert (
        all(p.exists() for p in kept) and (run / "checkpoints" / ".best.pt.zzzzzzzz.tmp").is_dir()
    )
    err = capsys.readouterr().err
    assert (
        f"note: removed 2 temporary file(s) left in {run} by an interrupted write: "
        ".metrics.jsonl.abcd1234.tmp, checkpoints/.last.pt.k2j4_x9a.tmp" in err
    )


KILLED_MID_WRITE = """
import os, signal, sys, torch
real = torch.save
def save(obj, handle, *args, **kwargs):
    if obj.get("kind") == "last" and obj["step"] == 6:
        os.kill(os.getpid(), signal.SIGKILL)  # dies inside the atomic write
    real(obj, handle, *args, **kwargs)
torch.save = save
from rnnlab.cli import app
app(sys.argv[1:])
"""


def test_sigkill_during_a_checkpoint_write_then_resume_cleans_up(tmp_path: Path) -> None:
    run = tmp_path / "run"
    sets = [x for item in [*TINY, "train.checkpoint_every=3"] for x in ("--set", item)]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, "train", "adding", "--quiet", *sets,
         "--run-dir", str(run)],
        cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = temporaries(run)
    assert len(left) == 1 and left[0].startswith(".last.pt.")
    assert (run / "checkpoints" / left[0]).stat().st_size == 0
    assert (run / "run.lock").exists()  # the dead process's lock file: it must not block
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4

    resumed = run_cli("train", "--resume", str(run), "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"note: removed 1 temporary file(s) left in {run} by an interrupted write: " in (
        resumed.stderr
    )
    assert temporaries(run) == [] and not (run / "run.lock").exists()
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 8


def test_save_checkpoint_of_a_full_disk_removes_its_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)
    monkeypatch.setattr(torch, "save", failing_save(errno.ENOSPC, lambda p: True))
    with pytest.raises(OSError) as caught:
        save_checkpoint({"step": 2}, path)
    assert caught.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
