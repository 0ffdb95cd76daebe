"""The copy, embedded Reber and Mackey-Glass tasks: metrics against oracle models, training."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import rnnlab.tasks.copy  # registers "copy"
import rnnlab.tasks.mackey_glass  # registers "mackey_glass"
import rnnlab.tasks.reber  # noqa: F401  (registers "reber")
from rnnlab import api, config
from rnnlab.errors import ConfigError
from rnnlab.tasks import TASKS

SMALL = {"train_samples": 256, "valid_samples": 64, "test_samples": 64}


def make(task: str, data: dict[str, Any], **model: Any) -> Any:
    cfg = config.from_dict(
        {
            "task": {"name": task},
            "data": data,
            "model": {"hidden_size": 8, **model},
            "train": {"max_steps": 4, "batch_size": 16, "device": "cpu"},
        }
    )
    return TASKS.get(task)(cfg)


class CopyOracle(nn.Module):
    """Predicts blanks, then the first M input tokens: the perfect copy model."""

    def __init__(self, memory: int, vocab: int) -> None:
        super().__init__()
        self.memory, self.vocab = memory, vocab
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        answer = torch.zeros_like(x)  # (B, S)
        answer[:, -self.memory :] = x[:, : self.memory]
        return 50.0 * nn.functional.one_hot(answer, self.vocab).float(), None


def test_copy_oracle_scores_perfectly_and_baseline_is_the_formula() -> None:
    task = make("copy", {"length": 7, **SMALL})
    data = task.build_data()
    metrics = task.evaluate(CopyOracle(10, data.spec.vocab_size), data.test)
    assert metrics["recall_accuracy"] == 1.0 and metrics["accuracy"] == 1.0
    assert metrics["cross_entropy"] < 1e-6
    assert metrics["baseline_cross_entropy"] == pytest.approx(10 * math.log(8) / 27)
    assert metrics["baseline_recall_accuracy"] == pytest.approx(1 / 8)


def test_copy_blank_predictor_recalls_nothing() -> None:
    task = make("copy", {"length": 7, **SMALL})
    data = task.build_data()

    class Blank(CopyOracle):
        def forward(self, x: Tensor) -> tuple[Tensor, None]:
            return 50.0 * nn.functional.one_hot(torch.zeros_like(x), self.vocab).float(), None

    metrics = task.evaluate(Blank(10, data.spec.vocab_size), data.test)
    assert metrics["recall_accuracy"] == 0.0
    assert metrics["accuracy"] == pytest.approx(17 / 27)


def test_reber_batches_have_one_long_range_step_per_string() -> None:
    task = make("reber", {"max_length": 20, **SMALL})
    data = task.build_data()
    inputs, next_symbol, allowed, lengths, long_range = next(iter(data.test))
    assert int(long_range.sum()) == inputs.shape[0]
    assert bool((lengths <= 19).all())
    # the actual next symbol is always allowed by the grammar
    valid = next_symbol != -100
    picked = allowed.gather(-1, next_symbol.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    assert bool((picked[valid] == 1).all())


class ReberOracle(nn.Module):
    """Ranks the actual next symbol first (peeks at the targets): every accuracy is 1."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.targets: Tensor | None = None

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, None]:
        assert self.targets is not None
        return 50.0 * nn.functional.one_hot(self.targets.clamp_min(0), 7).float(), None


def test_reber_metrics_of_an_oracle_and_of_a_branch_forgetting_model() -> None:
    task = make("reber", {"max_length": 20, **SMALL})
    batch = next(iter(task.build_data().test))
    oracle = ReberOracle()
    oracle.targets = batch[1][:, : int(batch[3].max())]
    metrics = task.evaluate(oracle, [batch])
    assert metrics["accuracy"] == 1.0 and metrics["long_range_accuracy"] == 1.0

    class AlwaysT(ReberOracle):  # right everywhere except that it always says T at the end
        def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, None]:
            assert self.targets is not None
            targets = self.targets.clone()
            targets[batch[4][:, : targets.shape[1]]] = 1  # "T"
            return 50.0 * nn.functional.one_hot(targets.clamp_min(0), 7).float(), None

    forgetful = AlwaysT()
    forgetful.targets = oracle.targets
    metrics = task.evaluate(forgetful, [batch])
    strings = task._split(SMALL["test_samples"], 2)  # same data as the test loader
    share_t = float((strings[0][:, 1, 1] == 1).float()[: batch[0].shape[0]].mean())
    assert metrics["accuracy"] == 1.0
    assert metrics["long_range_accuracy"] == pytest.approx(share_t)


def test_mackey_glass_standardized_on_train_and_persistence_model() -> None:
    task = make("mackey_glass", {"series_length": 1000, "window": 10, "horizon": 1})
    train, valid, test = task.splits()
    assert len(train) == 700 and len(valid) == 150 and len(test) == 150
    assert abs(float(train.mean())) < 1e-5 and float(train.std()) == pytest.approx(1.0, abs=1e-5)
    data = task.build_data()

    class Persistence(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(()))

        def forward(self, x: Tensor) -> tuple[Tensor, None]:
            return x[:, -1, :1], None

    metrics = task.evaluate(Persistence(), data.test)
    assert metrics["nrmse"] == pytest.approx(metrics["persistence_nrmse"])
    assert 0.0 < metrics["nrmse"] < 1.0  # the series is smooth: persistence beats the mean


def test_mackey_glass_rejects_a_window_longer_than_a_split() -> None:
    with pytest.raises(ConfigError, match="series_length=200"):
        make("mackey_glass", {"series_length": 200, "window": 40})


def test_reber_rejects_bidirectional() -> None:
    with pytest.raises(ConfigError, match="bidirectional"):
        make("reber", SMALL, bidirectional=True)


@pytest.mark.parametrize(
    ("task", "data", "metric"),
    [
        ("copy", {"length": 5, **SMALL}, "recall_accuracy"),
        ("reber", {"max_length": 20, **SMALL}, "long_range_accuracy"),
        ("mackey_glass", {"series_length": 800, "window": 10}, "nrmse"),
    ],
)
def test_each_task_trains_through_the_engine(
    task: str, data: dict[str, Any], metric: str, tmp_path: Path
) -> None:
    cfg = config.from_dict(
        {
            "task": {"name": task},
            "data": data,
            "model": {"cell": "gru", "hidden_size": 8},
            "train": {"max_steps": 5, "batch_size": 16, "device": "cpu", "lr": 0.01},
        }
    )
    result = api.train(cfg, run_dir=tmp_path / "run", quiet=None)
    assert result.step == 5
    assert math.isfinite(result.test["loss"]) and metric in result.test


def test_shipped_recipes_load() -> None:
    for name in ("copy", "reber", "mackey-glass"):
        cfg = config.load(Path(__file__).parents[2] / "src/rnnlab/recipes" / f"{name}.toml")
        assert cfg.task.name in ("copy", "reber", "mackey_glass")
