"""Exact resume: a run killed with SIGKILL mid-epoch and resumed ends bit-identical to a run
that was never stopped (deterministic CPU mode), and Ctrl-C / SIGTERM stop cleanly."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.training.helpers import env, rnnlab_cmd, run_cli, tiny_config, weights

from rnnlab import api
from rnnlab.errors import CheckpointError, TrainingInterrupted
from rnnlab.training import load_checkpoint, read_metrics
from rnnlab.training.checkpoint import RESUME_FIELDS, check_resumable

# 2 layers with dropout (consumes the torch RNG every step), evaluations and checkpoints
# that do not line up with epoch ends: 32 steps per epoch, 3 epochs.
ARGS = [
    "train",
    "adding",
    "--quiet",
    "--set", "data.length=10",
    "--set", "data.train_samples=512",
    "--set", "data.valid_samples=64",
    "--set", "data.test_samples=64",
    "--set", "model.hidden_size=16",
    "--set", "model.num_layers=2",
    "--set", "model.dropout=0.3",
    "--set", "train.batch_size=16",
    "--set", "train.epochs=3",
    "--set", "train.checkpoint_every=7",
    "--set", "train.eval_every_steps=10",
    "--set", "train.log_every_steps=3",
    "--set", "train.num_threads=1",
    "--set", "train.deterministic=true",
]  # fmt: skip
TOTAL_STEPS = 96


def checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except Exception:  # not written yet, or being replaced
        return -1


def comparable(run: Path) -> list[dict]:
    """metrics.jsonl without wall-clock fields."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timeless = []
    for record in records:
        if record.get("status") == "interrupted":
            continue
        timeless.append(
            {
                k: v
                for k, v in record.items()
                if k not in ("seconds", "elapsed_s", "elapsed_seconds", "samples_per_s")
            }
        )
    return timeless


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path: Path) -> None:
    reference = run_cli(*ARGS, "--run-dir", "ref", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr

    run = tmp_path / "killed"
    process = subprocess.Popen(
        rnnlab_cmd(*ARGS, "--run-dir", str(run)), cwd=tmp_path, env=env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    try:
        while checkpoint_step(run / "checkpoints" / "last.pt") < 40:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint with step >= 40 in time"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed_at = checkpoint_step(run / "checkpoints" / "last.pt")
    assert 40 <= killed_at < TOTAL_STEPS and killed_at % 32 != 0, "not killed mid-epoch"

    resumed = run_cli("train", "--resume", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr

    final_ref = weights(tmp_path / "ref" / "checkpoints" / "last.pt")
    final_run = weights(run / "checkpoints" / "last.pt")
    assert final_ref.keys() == final_run.keys()
    for name in final_ref:
        assert torch.equal(final_ref[name], final_run[name]), name
    best_ref = weights(tmp_path / "ref" / "checkpoints" / "best.pt")
    best_run = weights(run / "checkpoints" / "best.pt")
    assert all(torch.equal(best_ref[k], best_run[k]) for k in best_ref)
    assert comparable(run) == comparable(tmp_path / "ref")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_finishes_the_step_saves_and_says_how_to_resume(
    tmp_path: Path, signum: int, code: int
) -> None:
    run = tmp_path / "run"
    args = [a if a != "train.epochs=3" else "train.epochs=1000" for a in ARGS]
    process = subprocess.Popen(
        rnnlab_cmd(*args, "--run-dir", str(run)), cwd=tmp_path, env=env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while checkpoint_step(run / "checkpoints" / "last.pt") < 7:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert f"resume with: rnnlab train --resume {run}" in stderr
    assert "Traceback" not in stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["status"] == "interrupted"
    # last.pt holds the step the run stopped at, which a resume continues from.
    assert checkpoint_step(run / "checkpoints" / "last.pt") == records[-1]["step"]


# ---------------------------------------------------------- signals during a checkpoint

EXACT = [
    "train.epochs=3",
    "train.checkpoint_every=2",
    "train.deterministic=true",
    "model.num_layers=2",
    "model.dropout=0.3",
]
REAL_SAVE = torch.save


def signalling_save(deliveries: dict[int, list[int]]) -> Callable[..., None]:
    """A ``torch.save`` that sends this process the signals ``deliveries[step]`` halfway
    through writing ``last.pt`` of that step (the bytes are written in two halves)."""

    def save(obj: dict[str, Any], handle: Any, *args: Any, **kwargs: Any) -> None:
        buffer = io.BytesIO()
        REAL_SAVE(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        handle.write(data[: len(data) // 2])
        if obj.get("kind") == "last":
            for signum in deliveries.get(int(obj["step"]), []):
                os.kill(os.getpid(), signum)
        handle.write(data[len(data) // 2 :])

    return save


@pytest.mark.parametrize(
    ("deliveries", "stopped_at"),
    [
        ({2: [signal.SIGTERM]}, 3),  # one signal while a periodic checkpoint is written
        ({2: [signal.SIGINT], 3: [signal.SIGINT]}, 3),  # a second Ctrl-C during the stop's
        ({6: [signal.SIGINT, signal.SIGINT, signal.SIGTERM]}, 7),  # several in one write
    ],
)
def test_signals_during_a_checkpoint_write_keep_it_whole_and_resume_exact(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    deliveries: dict[int, list[int]],
    stopped_at: int,
) -> None:
    config = tiny_config(*EXACT)
    api.train(config, run_dir=tmp_path / "ref", quiet=None)
    run = tmp_path / "run"
    monkeypatch.setattr(torch, "save", signalling_save(deliveries))
    with pytest.raises(TrainingInterrupted) as caught:
        api.train(config, run_dir=run, quiet=True)
    first = next(iter(deliveries.values()))[0]
    assert caught.value.exit_code == 128 + first
    assert f"stopped after step {stopped_at}" in str(caught.value)
    assert f"resume with: rnnlab train --resume {run}" in str(caught.value)
    again = sum(len(v) for v in deliveries.values()) - 1
    notice = (
        "received again: the run is stopping, saving "
        f"{run / 'checkpoints' / 'last.pt'}; it exits when the checkpoint is saved"
    )
    assert capsys.readouterr().err.count(notice) == again
    # The checkpoint written while the signals came is whole, no temporary is left, and
    # it holds the step the run stopped at.
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == stopped_at
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    assert read_metrics(run / "metrics.jsonl")[-1]["status"] == "interrupted"

    monkeypatch.setattr(torch, "save", REAL_SAVE)
    assert api.train(resume=run, quiet=None).status == "completed"
    for kind in ("last", "best"):
        ref = weights(tmp_path / "ref" / "checkpoints" / f"{kind}.pt")
        got = weights(run / "checkpoints" / f"{kind}.pt")
        assert all(torch.equal(ref[k], got[k]) for k in ref), kind
    assert comparable(run) == comparable(tmp_path / "ref")


def test_a_signal_that_cuts_a_write_short_leaves_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever stops a write halfway (here an exception out of it), last.pt keeps the
    # previous checkpoint and a resume continues exactly from it.
    config = tiny_config(*EXACT)
    api.train(config, run_dir=tmp_path / "ref", quiet=None)
    run = tmp_path / "run"

    def cut(obj: dict[str, Any], handle: Any, *args: Any, **kwargs: Any) -> None:
        if obj.get("kind") == "last" and obj["step"] == 6:
            handle.write(b"half")
            raise KeyboardInterrupt
        REAL_SAVE(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", cut)
    with pytest.raises(KeyboardInterrupt):
        api.train(config, run_dir=run, quiet=None)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    monkeypatch.setattr(torch, "save", REAL_SAVE)
    assert api.train(resume=run, quiet=None).status == "completed"
    ref = weights(tmp_path / "ref" / "checkpoints" / "last.pt")
    got = weights(run / "checkpoints" / "last.pt")
    assert all(torch.equal(ref[k], got[k]) for k in ref)


SLOW_SAVES = """
import sys, time, torch
real = torch.save
def save(obj, handle, *args, **kwargs):
    time.sleep(0.6)  # a big model's checkpoint takes a while to write
    real(obj, handle, *args, **kwargs)
torch.save = save
from rnnlab.cli import app
app(sys.argv[1:])
"""


def test_second_ctrl_c_during_the_stop_says_so_and_exits_as_the_first(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [a if a != "train.epochs=3" else "train.epochs=1000" for a in ARGS]
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVES, *args, "--run-dir", str(run)], cwd=tmp_path,
        env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while checkpoint_step(run / "checkpoints" / "last.pt") < 7:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert lines[0] == (
        f"SIGINT received again: the run is stopping, saving {run / 'checkpoints' / 'last.pt'}; "
        "it exits when the checkpoint is saved"
    ), stderr
    assert lines[-1].endswith(f"resume with: rnnlab train --resume {run}") and len(lines) == 2
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["status"] == "interrupted"
    assert checkpoint_step(run / "checkpoints" / "last.pt") == records[-1]["step"]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("task_state", None, "it has no 'task_state'"),
        ("step", "7", "'step' is a str, expected int"),
        ("best", True, "'best' is a bool"),
        ("meters", {"interval": {}}, "no meters.epoch"),
    ],
)
def test_resuming_from_an_incomplete_checkpoint_is_one_line(
    tmp_path: Path, field: str, value: object, words: str
) -> None:
    payload: dict[str, object] = {name: {} for name in RESUME_FIELDS}
    payload.update(
        step=1, epoch=0, batch=0, best=None, task_state=None, meters={"interval": {}, "epoch": {}}
    )
    if value is None:
        del payload[field]
    else:
        payload[field] = value
    with pytest.raises(CheckpointError, match=words):
        check_resumable(payload, tmp_path / "last.pt")
