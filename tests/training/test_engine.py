"""Trainer behaviour in-process: checkpoints, NaN handling, early stopping, schedules."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.training.helpers import tiny_config, weights
from torch import Tensor, nn

from rnnlab import api
from rnnlab.config import ExperimentConfig
from rnnlab.data.loaders import ShuffledBatches
from rnnlab.errors import CheckpointError, NonFiniteLossError, RunDirError
from rnnlab.tasks.adding import AddingTask
from rnnlab.training import Trainer, load_checkpoint, read_metrics, save_checkpoint
from rnnlab.training.schedules import build_schedule


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class NanAt(AddingTask):
    """The adding task with a NaN loss at chosen (1-based) steps."""

    def __init__(self, config: ExperimentConfig, bad_steps: set[int]) -> None:
        super().__init__(config)
        self.bad_steps = bad_steps
        self.calls = 0

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float]]:
        self.calls += 1
        loss, state, metrics = super().step(model, batch, state)
        if self.calls in self.bad_steps:
            loss = loss * float("nan")
        return loss, state, metrics


def fit(tmp_path: Path, *overrides: str, task: Any = None, name: str = "run") -> Any:
    config = tiny_config(*overrides)
    trainer = Trainer(task or AddingTask(config), config, tmp_path / name, quiet=None)
    return trainer.fit()


def test_run_directory_layout_and_records(tmp_path: Path) -> None:
    result = fit(tmp_path, "train.grad_clip_norm=0.01")
    run = tmp_path / "run"
    assert (run / "config.toml").is_file()
    assert (run / "checkpoints" / "last.pt").is_file() and (
        run / "checkpoints" / "best.pt"
    ).is_file()
    records = read_metrics(run / "metrics.jsonl")
    kinds = [r["kind"] for r in records]
    assert kinds.count("epoch") == 2 and kinds[-1] == "end" and result.status == "completed"
    train = [r for r in records if r["kind"] == "train"]
    assert len(train) == 4  # 8 steps, a record every 2
    assert all(r["clipped_fraction"] == 1.0 and r["grad_norm"] > 0.01 for r in train)
    assert all(r["samples_per_s"] > 0 for r in train)
    assert records[-2]["split"] == "test" and records[-2]["checkpoint"] == "best"
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    assert payload["step"] == 8 and payload["epoch"] == 2 and payload["batch"] == 0
    assert payload["config"]["model"]["hidden_size"] == 8
    with pytest.raises(RunDirError, match="already holds a run"):
        fit(tmp_path)


def test_truncated_checkpoint_is_a_clear_error_and_stays_put(tmp_path: Path) -> None:
    fit(tmp_path)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"checkpoint {last} is truncated or corrupted"):
        load_checkpoint(last)
    with pytest.raises(CheckpointError, match=r"truncated or corrupted"):
        api.train(resume=tmp_path / "run", quiet=None)
    assert last.read_bytes() == data[: len(data) // 2]  # reading never touches the file
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=r"garbage\.pt"):
        load_checkpoint(garbage)


def test_failed_write_leaves_the_previous_checkpoint_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint({"step": 1, "model": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()

    def crash(obj: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temporary left
    assert load_checkpoint(path)["step"] == 1


def test_checkpoint_that_does_not_fit_the_model(tmp_path: Path) -> None:
    fit(tmp_path)
    with pytest.raises(
        CheckpointError, match=r"does not match the model built from the config: .*shape"
    ):
        api.train(
            resume=tmp_path / "run", overrides=["model.hidden_size=9", "train.epochs=3"], quiet=None
        )
    with pytest.raises(CheckpointError, match=r"missing"):
        api.train(
            resume=tmp_path / "run", overrides=["model.num_layers=2", "train.epochs=3"], quiet=None
        )


def test_rng_state_survives_weights_only_round_trip(tmp_path: Path) -> None:
    from rnnlab.training.checkpoint import capture_rng, restore_rng

    state = capture_rng()
    save_checkpoint({"rng": state}, tmp_path / "r.pt")
    expected = (torch.rand(3), __import__("numpy").random.rand(2), __import__("random").random())
    restore_rng(load_checkpoint(tmp_path / "r.pt")["rng"])
    again = (torch.rand(3), __import__("numpy").random.rand(2), __import__("random").random())
    assert (
        torch.equal(expected[0], again[0])
        and (expected[1] == again[1]).all()
        and expected[2] == again[2]
    )


def test_nonfinite_loss_stops_naming_step_and_last_good_checkpoint(tmp_path: Path) -> None:
    config = tiny_config("train.checkpoint_every=2")
    task = NanAt(config, {5})
    with pytest.raises(NonFiniteLossError) as info:
        Trainer(task, config, tmp_path / "run", quiet=None).fit()
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert f"loss is nan at step 5 (epoch 2, batch 1); the last good checkpoint is {last}" in str(
        info.value
    )
    assert load_checkpoint(last)["step"] == 4  # intact, not overwritten with NaN weights
    assert read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]["status"] == "nonfinite"


def test_skip_nonfinite_skips_the_batch(tmp_path: Path) -> None:
    config = tiny_config("train.skip_nonfinite=true")
    result = Trainer(NanAt(config, {2, 3}), config, tmp_path / "run", quiet=None).fit()
    assert result.status == "completed" and result.step == 8
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    skipped = [r["skipped"] for r in records if r["kind"] == "train"]
    assert skipped == [1, 1, 0, 0]
    assert all(
        torch.isfinite(w).all()
        for w in weights(tmp_path / "run" / "checkpoints" / "last.pt").values()
    )


def test_early_stopping_stops_after_patience(tmp_path: Path) -> None:
    # lr so small nothing improves by min_delta: stops after exactly `patience` more evaluations.
    result = fit(
        tmp_path,
        "train.epochs=20",
        "train.lr=1e-9",
        "train.early_stopping.patience=2",
        "train.early_stopping.min_delta=0.1",
    )
    assert result.status == "early_stopped" and result.epoch == 3
    end = read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]
    assert "has not improved" in end["reason"]


def _lrs(tmp_path: Path, *overrides: str) -> list[float]:
    fit(tmp_path, "train.log_every_steps=1", *overrides)
    return [
        r["lr"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"
    ]


def test_step_schedule_divides_after_epoch_n(tmp_path: Path) -> None:
    lrs = _lrs(
        tmp_path,
        "train.epochs=4",
        "train.lr=1.0",
        "train.optimizer=sgd",
        "train.schedule.kind=step",
        "train.schedule.start_epoch=2",
        "train.schedule.factor=2",
    )
    # 4 steps per epoch; epochs 1-2 at lr, then lr / 2 ** (e - 2).
    assert lrs == [1.0] * 8 + [0.5] * 4 + [0.25] * 4


def test_cosine_schedule_with_warmup(tmp_path: Path) -> None:
    lrs = _lrs(
        tmp_path,
        "train.lr=0.1",
        "train.schedule.kind=cosine",
        "train.schedule.warmup_steps=3",
        "train.schedule.min_lr=0.01",
    )
    total, warm = 8, 3
    expected = [
        0.1 * (s + 1) / warm
        if s < warm
        else 0.01 + 0.09 * (1 + math.cos(math.pi * (s - warm) / (total - warm))) / 2
        for s in range(total)
    ]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_plateau_schedule_definition() -> None:
    config = tiny_config(
        "train.lr=1.0",
        "train.schedule.kind=plateau",
        "train.schedule.patience=1",
        "train.schedule.factor=0.5",
        "train.schedule.min_lr=0.2",
    )
    schedule = build_schedule(config.train, total_steps=100)
    factors = []
    for loss in [1.0, 0.9, 0.95, 0.95, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]:
        schedule.on_evaluate({"loss": loss})
        factors.append(schedule.factor(0, 0))
    # two evaluations in a row without improvement -> halve; floor at min_lr / lr = 0.2
    assert factors == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]
    state = schedule.state_dict()
    other = build_schedule(config.train, total_steps=100)
    other.load_state_dict(state)
    assert other.state_dict() == state


def test_constant_schedule(tmp_path: Path) -> None:
    assert _lrs(tmp_path, "train.lr=0.003") == [0.003] * 8


def test_loader_order_depends_only_on_seed_and_epoch() -> None:
    x = torch.arange(20.0)
    a = ShuffledBatches((x,), 4, seed=3)
    b = ShuffledBatches((x,), 4, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    torch.manual_seed(0)
    first = [t[0] for t in a.batches()]
    torch.manual_seed(99)
    assert all(torch.equal(u, v[0]) for u, v in zip(first[2:], b.batches(2), strict=True))
    b.set_epoch(3)
    assert not torch.equal(torch.cat(first), torch.cat([t[0] for t in b.batches()]))
    a.shard(1, 2)
    assert [t[0].tolist() for t in a.batches()] == [f[2:].tolist() for f in first]
