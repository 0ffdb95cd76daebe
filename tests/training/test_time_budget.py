"""Time-budgeted training (``train.time_budget``) on a patched clock: the schedule over the
budget, stopping so that the final evaluation, test and checkpoint fit, resume keeping the
time spent, ``elapsed_seconds`` in metrics.jsonl, the time-to-quality plot, ``--budget``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.training.helpers import TINY, tiny_config
from typer.testing import CliRunner

from rnnlab import api
from rnnlab.cli import app
from rnnlab.errors import RunDirError
from rnnlab.training import budget as budget_mod
from rnnlab.training import read_metrics
from rnnlab.training.budget import MARGIN, SLACK
from rnnlab.training.callbacks import Callback
from rnnlab.training.curves import PLOT
from rnnlab.training.protocol import StepInfo, TrainerView
from rnnlab.training.schedules import BudgetDecay, build_schedule

STEP_SECONDS = 1.0
EVAL_SECONDS = 3.0


class Clock:
    """A fake clock the tests move by hand."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Ticks(Callback):
    """Every step takes ``step`` seconds and every evaluation ``evaluate`` seconds."""

    name = "ticks"

    def __init__(self, clock: Clock, step: float, evaluate: float) -> None:
        self.clock, self.step, self.evaluate = clock, step, evaluate
        self.lrs: list[float] = []

    def on_step_end(self, trainer: TrainerView, info: StepInfo) -> None:
        self.clock.t += self.step
        self.lrs.append(info.lr)

    def on_evaluate(self, trainer: TrainerView, split: str, metrics: dict[str, float]) -> None:
        self.clock.t += self.evaluate


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(budget_mod, "now", fake)
    return fake


def budgeted(tmp_path: Path, clock: Clock, budget: str, *extra: str, name: str = "run") -> Any:
    config = tiny_config("train.epochs=100", f"train.time_budget={budget}", *extra)
    ticks = Ticks(clock, STEP_SECONDS, EVAL_SECONDS)
    result = api.train(config, run_dir=tmp_path / name, quiet=None, callbacks=[ticks])
    return result, read_metrics(tmp_path / name / "metrics.jsonl"), ticks


def valid_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "eval" and r["split"] == "valid"]


def saved_budget(run: Path) -> dict[str, Any]:
    payload = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    return payload["budget"]


# ------------------------------------------------------------------------- the schedule


def test_budget_schedule_warmup_then_cosine_or_linear_to_the_floor() -> None:
    cosine = BudgetDecay("cosine", warmup=0.1, floor=0.2, progress=lambda step: 0.0)
    linear = BudgetDecay("linear", warmup=0.1, floor=0.2, progress=lambda step: 0.0)
    assert cosine.at(0.0) == 0.0
    assert cosine.at(0.05) == pytest.approx(0.5)
    assert cosine.at(0.1) == pytest.approx(1.0)
    assert cosine.at(0.55) == pytest.approx(0.2 + 0.8 * 0.5)  # half-way through the decay
    assert cosine.at(0.1 + 0.9 / 4) == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2)
    assert linear.at(0.1 + 0.9 / 4) == pytest.approx(0.2 + 0.8 * 0.75)
    for schedule in (cosine, linear):
        assert schedule.at(1.0) == pytest.approx(0.2)
        assert schedule.at(1.7) == pytest.approx(0.2)  # past the end: the floor


def test_budget_schedule_follows_the_time_used_or_the_steps_done() -> None:
    config = tiny_config(
        "train.time_budget=100s",
        'train.schedule={kind = "budget", decay = "linear", warmup = "10s", min_lr = 0.0}',
        "train.max_steps=1000",
    )
    used = [0.0]
    schedule = build_schedule(config.train, 1000, lambda: used[0])
    assert schedule.factor(0, 0) == 0.0
    used[0] = 0.05
    assert schedule.factor(0, 0) == pytest.approx(0.5)  # warm-up of 10 s in 100 s
    used[0] = 0.55
    assert schedule.factor(0, 0) == pytest.approx(0.5)
    assert schedule.factor(775, 0) == pytest.approx(0.25)  # the steps are further on


# ----------------------------------------------------------------------- the whole run


def test_run_stops_so_that_the_final_evaluation_and_checkpoint_fit(
    tmp_path: Path, clock: Clock
) -> None:
    result, records, _ = budgeted(tmp_path, clock, "40s")
    end = records[-1]
    assert result.status == "time_budget" and end["status"] == "time_budget"
    assert end["time_budget_seconds"] == 40.0
    assert (
        40.0 - MARGIN * 2 * EVAL_SECONDS - STEP_SECONDS - SLACK * 40
        <= end["elapsed_seconds"]
        <= 40.0
    )
    assert end["step"] < 400  # far fewer than the 100 epochs of 4 steps
    valid = valid_records(records)
    assert valid[0]["step"] == 1  # measured after the first step
    times = [r["elapsed_seconds"] for r in valid]
    assert times == sorted(times) and times[-1] <= 40.0
    assert valid[-1]["step"] == end["step"]  # a last validation at the stop
    assert saved_budget(tmp_path / "run")["elapsed"] <= 40.0
    assert (
        torch.load(
            tmp_path / "run" / "checkpoints" / "last.pt", map_location="cpu", weights_only=True
        )["step"]
        == end["step"]
    )
    test = [r for r in records if r.get("split") == "test"]
    assert len(test) == 1 and test[0]["step"] == end["step"]
    plot = tmp_path / "run" / PLOT
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learning_rate_of_a_budget_schedule_decays_over_the_run(
    tmp_path: Path, clock: Clock
) -> None:
    schedule = 'train.schedule={kind = "budget", decay = "cosine", warmup = 0.1}'
    _, records, ticks = budgeted(tmp_path, clock, "40s", schedule)
    peak = ticks.lrs.index(max(ticks.lrs))
    assert 0 < peak < len(ticks.lrs) - 1
    assert ticks.lrs[:peak] == sorted(ticks.lrs[:peak])  # warm-up rises
    assert ticks.lrs[peak:] == sorted(ticks.lrs[peak:], reverse=True)  # then decays
    assert ticks.lrs[-1] < 0.1 * max(ticks.lrs)  # near the floor (0) at the stop
    assert records[-1]["status"] == "time_budget"


def test_epochs_still_cap_a_budgeted_run(tmp_path: Path, clock: Clock) -> None:
    result, records, _ = budgeted(tmp_path, clock, "1h", "train.epochs=2")
    assert result.status == "completed" and result.step == 8
    assert records[-1]["time_budget_seconds"] == 3600.0


def test_budget_shorter_than_a_step_trains_one_step(tmp_path: Path, clock: Clock) -> None:
    config = tiny_config("train.epochs=100", "train.time_budget=1s")
    ticks = Ticks(clock, step=5.0, evaluate=0.0)
    clock.t = -5.0  # the clock starts at fit(); set-up takes the whole budget and more
    ticks.on_fit_start = lambda trainer: setattr(clock, "t", 0.0)  # type: ignore[method-assign]
    result = api.train(config, run_dir=tmp_path / "run", quiet=None, callbacks=[ticks])
    assert result.status == "time_budget" and result.step == 1
    end = read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]
    assert end["elapsed_seconds"] > end["time_budget_seconds"] == 1.0


def test_resume_continues_the_time_spent(tmp_path: Path, clock: Clock) -> None:
    first, records, _ = budgeted(tmp_path, clock, "40s")
    spent = saved_budget(tmp_path / "run")["elapsed"]
    assert spent == pytest.approx(records[-1]["elapsed_seconds"], abs=EVAL_SECONDS + 0.01)

    clock.t = 1000.0  # a new session: its clock starts anywhere
    ticks = Ticks(clock, STEP_SECONDS, EVAL_SECONDS)
    with pytest.raises(RunDirError, match=r"has used its time budget.*raise train\.time_budget"):
        api.train(resume=tmp_path / "run", quiet=None, callbacks=[ticks])

    again = api.train(
        resume=tmp_path / "run", overrides=["train.time_budget=80s"], quiet=None, callbacks=[ticks]
    )
    resumed = read_metrics(tmp_path / "run" / "metrics.jsonl")
    new_valid = [r for r in valid_records(resumed) if r["step"] > first.step]
    assert again.status == "time_budget" and again.step > first.step
    assert new_valid and all(r["elapsed_seconds"] > spent for r in new_valid)
    assert spent + 20.0 < resumed[-1]["elapsed_seconds"] <= 80.0


def test_every_run_records_elapsed_seconds_but_only_a_budgeted_one_plots(tmp_path: Path) -> None:
    api.train(tiny_config(), run_dir=tmp_path / "plain", quiet=None)
    records = read_metrics(tmp_path / "plain" / "metrics.jsonl")
    assert all(r["elapsed_seconds"] >= 0 for r in valid_records(records))
    assert "time_budget_seconds" not in records[-1]
    assert not (tmp_path / "plain" / PLOT).exists()


def test_cli_budget_sets_train_time_budget(tmp_path: Path) -> None:
    sets = [item for pair in (("--set", o) for o in TINY) for item in pair]
    runner = CliRunner()
    run = tmp_path / "cli"
    done = runner.invoke(app, ["train", "adding", *sets, "--budget", "1h", "--run-dir", str(run)])
    assert done.exit_code == 0, done.output
    assert 'time_budget = "1h"' in (run / "config.toml").read_text()
    end = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert end["time_budget_seconds"] == 3600.0
    assert (run / PLOT).is_file()
    bad = runner.invoke(app, ["train", "adding", *sets, "--budget", "90", "--run-dir", str(run)])
    assert bad.exit_code == 2
    assert "train.time_budget: expected a duration" in bad.output
