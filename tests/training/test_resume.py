"""Exact resume: a run killed with SIGKILL mid-epoch and resumed ends bit-identical to a run
that was never stopped (deterministic CPU mode), and Ctrl-C / SIGTERM stop cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from tests.training.helpers import env, rnnlab_cmd, run_cli, weights

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
            {k: v for k, v in record.items() if k not in ("seconds", "elapsed_s", "samples_per_s")}
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
