"""One training per run directory: a second one refuses in one line; a dead holder's lock
file blocks no one; only rank 0 of a DDP run takes the lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.training.helpers import TINY, env, rnnlab_cmd, run_cli, tiny_config

from rnnlab import api
from rnnlab.errors import RunLockedError
from rnnlab.training import lock as lock_mod
from rnnlab.training.lock import RunLock

HOLD = """
import sys, time
from rnnlab.training.lock import RunLock
RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_held_lock_refuses_a_second_training_naming_the_holder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    api.train(tiny_config("train.epochs=1"), run_dir=run, quiet=None)
    held = RunLock(run).acquire()
    try:
        pattern = (
            rf"^run directory {run} is in use by another training \(pid {os.getpid()} on "
            rf"{socket.gethostname()}, since .*\); wait for it to end"
        )
        with pytest.raises(RunLockedError, match=pattern):
            api.train(resume=run, overrides=["train.epochs=2"], quiet=None)
        with pytest.raises(RunLockedError):
            api.train(tiny_config(), run_dir=run, quiet=None)
    finally:
        held.release()
    assert not (run / "run.lock").exists()
    assert api.train(resume=run, overrides=["train.epochs=2"], quiet=None).status == "completed"
    assert not (run / "run.lock").exists()  # released (and removed) at the end of a run


def test_the_lock_of_a_killed_process_does_not_block(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], env=env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=rf"pid {holder.pid} "):
            RunLock(folder).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert (folder / "run.lock").exists()  # left behind by the dead process
    again = RunLock(folder).acquire()
    assert again.held
    again.release()


def test_a_lock_file_removed_before_flock_is_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between our open and our flock, the holder released and removed run.lock: the file
    # we locked is no longer the one at run.lock, so we must open the new one.
    real_stat, calls = os.stat, list[object]()

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(path).endswith("run.lock") and not calls:
            calls.append(path)
            os.unlink(str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", stat)
    lock = RunLock(tmp_path).acquire()
    monkeypatch.setattr(os, "stat", real_stat)
    assert calls and lock.held and (tmp_path / "run.lock").exists()
    with pytest.raises(RunLockedError):
        RunLock(tmp_path).acquire()
    lock.release()


def test_two_trainings_into_one_run_directory(tmp_path: Path) -> None:
    run = tmp_path / "run"
    sets = [x for item in [*TINY, "train.epochs=100000"] for x in ("--set", item)]
    first = subprocess.Popen(
        rnnlab_cmd("train", "adding", "--quiet", *sets, "--run-dir", str(run)), cwd=tmp_path,
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (run / "checkpoints" / "last.pt").is_file():
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = run_cli("train", "--resume", str(run), cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        assert second.stderr.startswith(
            f"error: run directory {run} is in use by another training (pid {first.pid} on "
        )
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    # The killed first training does not block a resume.
    resumed = run_cli("train", "--resume", str(run), "--quiet", "--set", "train.max_steps=1",
                      cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 2 and "already complete" in resumed.stderr  # got past the lock


def test_only_rank_zero_takes_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnlab.training import distributed
    from rnnlab.training.distributed import DistInfo

    taken: list[Path] = []
    real_claim = lock_mod.claim

    def claim(run: object, resume: bool, announce: bool = True) -> RunLock:
        taken.append(Path(str(run)))
        return real_claim(run, resume, announce)  # type: ignore[arg-type]

    monkeypatch.setattr("rnnlab.training.trainer.claim", claim)
    monkeypatch.setattr(
        distributed, "setup", lambda device: (DistInfo(rank=1, world_size=2), False)
    )
    monkeypatch.setattr(distributed, "barrier", lambda info: None)
    monkeypatch.setattr(distributed, "wrap", lambda model, info, device: model)
    monkeypatch.setattr(
        distributed, "any_true", lambda flags, info, device: [bool(f) for f in flags]
    )
    result = api.train(tiny_config("train.epochs=1"), run_dir=tmp_path / "run", quiet=None)
    assert result.step == 4 and taken == []  # rank 1 of 2 trained, took no lock
    assert not (tmp_path / "run" / "run.lock").exists()
