"""The rnnlab command: exit codes, one-line errors without tracebacks, evaluate, runs."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.training.helpers import TINY
from typer.testing import CliRunner, Result

from rnnlab import __version__
from rnnlab.cli import app

runner = CliRunner()


def sets(*items: str) -> list[str]:
    out = []
    for item in items:
        out += ["--set", item]
    return out


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"rnnlab {__version__}"
    for command in ([], ["train"], ["evaluate"], ["runs"]):
        shown = runner.invoke(app, [*command, "--help"])
        assert shown.exit_code == 0 and "Example" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "adding", "--set", "train.lrr=1"],
            "error: train.lrr: unknown key; did you mean 'lr'?",
        ),
        (
            ["train", "adding", "--set", "model.cell=lstn"],
            "error: model.cell: unknown cell; did you mean 'lstm'?",
        ),
        (
            ["train", "nope.toml"],
            "error: 'nope.toml' is neither a config file nor a shipped recipe",
        ),
        (["train"], "error: give a config file or recipe name, or --resume RUN_DIR"),
        (["train", "--resume", "no/such/run"], "error: cannot resume no/such/run"),
        (["evaluate", "no/such/run"], "error: no/such/run is not a run directory"),
        (["runs", "no/such/dir"], "error: no run folder no/such/dir"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message), result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_layer_value_error_is_reported_cleanly(tmp_path: Path) -> None:
    # A value the config accepts but a layer rejects surfaces as a one-line error, exit 2.
    result = runner.invoke(
        app,
        [
            "train",
            "adding",
            *sets(*TINY, "model.input_projection=3", "train.batch_size=1000"),
            "--run-dir",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2 and "error: the training split has no full batch" in result.output


def test_train_evaluate_runs(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "tiny"
    result = runner.invoke(app, ["train", "adding", "--quiet", *sets(*TINY), "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    assert "status: completed" in result.output and "epoch 2 step 8 valid: loss" in result.output

    shown = runner.invoke(app, ["evaluate", str(run), "--split", "test", "--json"])
    assert shown.exit_code == 0, shown.output
    metrics = json.loads(shown.output)
    assert set(metrics) == {"loss", "mse", "baseline_mse", "relative_mse"}
    test_record = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-2]
    assert metrics["mse"] == pytest.approx(test_record["mse"], rel=1e-6)

    table = runner.invoke(app, ["runs", str(tmp_path / "runs")])
    assert table.exit_code == 0 and "tiny" in table.output and "completed" in table.output

    again = runner.invoke(app, ["train", "--resume", str(run)])
    assert again.exit_code == 2 and "already complete at step 8" in again.output
    more = runner.invoke(app, ["train", "--resume", str(run), "--quiet", "--set", "train.epochs=3"])
    assert more.exit_code == 0 and "steps: 12" in more.output


def one_error_line(result: Result, start: str) -> str:
    """The single line of a refused command (exit 2, no traceback), checked to begin so."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(start), result.output
    return result.output.strip()


def test_a_file_where_the_run_directory_goes_is_one_line(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("x")
    train = ["train", "adding", *sets(*TINY)]
    one_error_line(
        runner.invoke(app, [*train, "--run-dir", str(taken)]),
        f"error: run directory {taken} is a file; choose another --run-dir",
    )
    one_error_line(
        runner.invoke(app, [*train, "--set", f"output.dir={taken}"]),
        f"error: output.dir: {taken} is a file, not a directory",
    )
    one_error_line(
        runner.invoke(app, ["train", "--resume", str(taken)]), f"error: cannot resume {taken}"
    )


def test_disk_full_is_one_line_naming_the_run_and_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = torch.save

    def save(obj: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        if obj.get("kind") == "last" and obj["step"] == 8:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "adding", "-q", *sets(*TINY), "--run-dir", str(run)])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == (
        f"error: no space left on the device holding {run} (writing checkpoints/last.pt); the "
        f"last good checkpoint checkpoints/last.pt is intact: free space and resume with rnnlab "
        f"train --resume {run}"
    )
    assert "Traceback" not in result.output


def test_read_only_resume_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    assert (
        runner.invoke(app, ["train", "adding", *sets(*TINY), "--run-dir", str(run)]).exit_code == 0
    )

    def refuse(path: Any, write: Any) -> Path:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("rnnlab.io.atomic_write", refuse)
    monkeypatch.setattr("rnnlab.training.checkpoint.atomic_write", refuse)
    one_error_line(
        runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=3"]),
        f"error: run directory {run} is not writable (read-only file system",
    )


def test_a_checkpoint_holding_objects_is_refused_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert (
        runner.invoke(app, ["train", "adding", *sets(*TINY), "--run-dir", str(run)]).exit_code == 0
    )
    best = run / "checkpoints" / "best.pt"
    torch.save({"format": "rnnlab-checkpoint", "version": 1, "x": Exploit()}, best)
    line = one_error_line(
        runner.invoke(app, ["evaluate", str(run)]), f"error: checkpoint {best} holds pickled "
    )
    assert "refuses to load them" in line and "weights_only=True" in line
    assert "corrupted" not in line


class Exploit:
    """An object whose unpickling would run a command."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))
