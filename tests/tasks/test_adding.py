"""The adding task: data, model, step/evaluate contract and its metrics."""

from __future__ import annotations

import pytest
import torch

from rnnlab import config as cfg
from rnnlab.errors import ConfigError
from rnnlab.tasks import TASKS
from rnnlab.tasks.adding import AddingTask


def make(*overrides: str) -> AddingTask:
    config = cfg.load(
        "adding",
        [
            "data.train_samples=64",
            "data.valid_samples=500",
            "data.length=12",
            "model.hidden_size=8",
            *overrides,
        ],
    )
    task = TASKS.get("adding")(config)
    assert isinstance(task, AddingTask)
    return task


def test_registered_with_its_data_schema() -> None:
    assert (
        TASKS.get("adding") is AddingTask and AddingTask.Data.model_fields["length"].default == 50
    )


def test_data_model_step_and_evaluate() -> None:
    task = make()
    data = task.build_data()
    assert len(data.train) == 2 and data.spec.num_features == 2
    model = task.build_model(data.spec)
    batch = next(iter(data.train.batches()))
    assert batch[0].shape == (32, 12, 2) and batch[1].shape == (32, 1)
    loss, state, metrics = task.step(model, batch, task.initial_state())
    assert loss.dim() == 0 and state is None and metrics["count"] == 32
    result = task.evaluate(model.eval(), data.valid)
    assert result["loss"] == result["mse"]
    assert result["relative_mse"] == pytest.approx(result["mse"] / result["baseline_mse"])


def test_baseline_is_the_mean_predictor() -> None:
    task = make()
    data = task.build_data()

    class Mean(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
            return torch.ones(x.shape[0], 1), None

    result = task.evaluate(Mean(), data.valid)
    assert result["relative_mse"] == pytest.approx(1.0)
    assert result["baseline_mse"] == pytest.approx(1 / 6, abs=0.02)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_cell_and_extras_build(cell: str) -> None:
    task = make(
        f"model.cell={cell}",
        "model.bidirectional=true",
        "model.layer_norm=true",
        "model.pooling=mean",
        "model.input_projection=4",
        "model.init_range=0.1",
    )
    data = task.build_data()
    model = task.build_model(data.spec)
    loss, _, _ = task.step(model, next(iter(data.train.batches())), None)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_rejects_settings_it_cannot_use() -> None:
    with pytest.raises(ConfigError, match=r"train\.seq_len=20 is not used by task 'adding'"):
        make("train.seq_len=20")
