"""DDP with 2 CPU processes under torchrun (gloo) against one process: same global batch,
same results within float tolerance, only rank 0 writes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests.training.helpers import env, run_cli, weights

from rnnlab.training import read_metrics

ARGS = [
    "train", "adding", "--quiet",
    "--set", "data.length=8",
    "--set", "data.train_samples=256",
    "--set", "data.valid_samples=64",
    "--set", "data.test_samples=64",
    "--set", "model.hidden_size=16",
    "--set", "train.batch_size=32",
    "--set", "train.epochs=2",
    "--set", "train.lr=0.01",
    "--set", "train.grad_clip_norm=0.5",
    "--set", "train.num_threads=1",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None and
                    shutil.which("torchrun") is None, reason="torchrun not installed")  # fmt: skip
def test_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    single = run_cli(*ARGS, "--run-dir", "single", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "rnnlab", *ARGS, "--run-dir", "ddp",
    ]  # fmt: skip
    ddp = subprocess.run(
        command, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    payload = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=True)
    assert payload["world_size"] == 2  # really two processes
    one = weights(tmp_path / "single" / "checkpoints" / "last.pt")
    two = weights(tmp_path / "ddp" / "checkpoints" / "last.pt")
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-5, rtol=1e-4), name

    def evals(run: str) -> list[float]:
        return [
            r["loss"] for r in read_metrics(tmp_path / run / "metrics.jsonl") if r["kind"] == "eval"
        ]

    assert evals("ddp") == pytest.approx(evals("single"), rel=1e-4)
    # Rank 0 alone wrote the run directory: one line per record, one end record.
    records = read_metrics(tmp_path / "ddp" / "metrics.jsonl")
    assert [r["kind"] for r in records].count("end") == 1
    assert [r["kind"] for r in records] == [
        r["kind"] for r in read_metrics(tmp_path / "single" / "metrics.jsonl")
    ]
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == [
        "best.pt",
        "last.pt",
    ]
