"""Config: round trip, overrides, and one clear line for each kind of bad key or value."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from rnnlab import config as cfg
from rnnlab.config import ExperimentConfig
from rnnlab.errors import ConfigError
from rnnlab.registry import TASKS
from rnnlab.tasks.adding import AddingData

BASE = {"task": {"name": "adding"}, "train": {"epochs": 1}}


def error_of(raw: dict, *overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        cfg.from_dict(cfg.apply_overrides(raw, overrides))
    return str(info.value)


def test_round_trip_through_toml(tmp_path: Path) -> None:
    original = cfg.load(
        "adding",
        [
            "model.cell=gru",
            "model.zoneout=0.1",
            "train.schedule.kind=cosine",
            "train.schedule.warmup_steps=10",
            "train.early_stopping.patience=3",
            "train.betas=[0.8, 0.9]",
        ],
    )
    path = tmp_path / "config.toml"
    cfg.save(original, path)
    again = cfg.load(path)
    assert again == original
    assert isinstance(again.data, AddingData)
    assert again.train.betas == (0.8, 0.9)
    assert again.train.schedule.kind == "cosine"


def test_every_optional_setting_defaults_to_none() -> None:
    """Resolved configs leave None out; that round-trips only if None is the default."""

    def walk(model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            args = typing.get_args(field.annotation)
            if type(None) in args:
                assert field.default is None, f"{model.__name__}.{name}"
            for arg in (field.annotation, *args):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    walk(arg)

    tasks = [TASKS.get(name).Data for name in TASKS.names()]
    for section in (
        cfg.ModelConfig,
        cfg.TrainConfig,
        cfg.OutputConfig,
        cfg.EarlyStoppingConfig,
        cfg.PlateauSchedule,
        *tasks,
    ):
        walk(section)
    assert AddingData in tasks and len(tasks) >= 8


def test_overrides_are_typed() -> None:
    config = cfg.load(
        "adding",
        [
            "train.lr=0.5",
            "model.cell=gru",
            "train.deterministic=false",
            "model.hidden_size=7",
            "output.name=my-run",
            "train.max_steps=100",
            "train.epochs=none",
        ],
    )
    assert config.train.lr == 0.5 and isinstance(config.train.lr, float)
    assert config.model.cell == "gru"
    assert config.train.deterministic is False
    assert config.model.hidden_size == 7
    assert config.output.name == "my-run"
    assert config.train.epochs is None and config.train.max_steps == 100


def test_with_overrides_keeps_the_rest() -> None:
    config = cfg.from_dict(BASE)
    changed = cfg.with_overrides(config, ["data.length=20"])
    assert changed.data.length == 20 and changed.train.epochs == 1


def test_misspelled_key_is_named_with_a_suggestion() -> None:
    message = error_of(BASE, "train.lrr=0.1")
    assert message.startswith("train.lrr: unknown key; did you mean 'lr'?")
    assert "allowed:" in message and "\n" not in message


def test_misspelled_section_and_nested_key() -> None:
    assert "did you mean 'model'?" in error_of(BASE, "modle.cell=gru")
    message = error_of(BASE, "train.early_stopping.patiense=2")
    assert message.startswith(
        "train.early_stopping.patiense: unknown key; did you mean 'patience'?"
    )


def test_bad_value_names_path_value_and_rule() -> None:
    message = error_of(BASE, "train.lr=-1")
    assert message == "train.lr: Input should be greater than 0 (got -1)"
    message = error_of(BASE, "train.optimizer=adagrad")
    assert message.startswith(
        "train.optimizer: Input should be 'sgd', 'adam', 'adamw' or 'nt-asgd' (got 'adagrad')"
    )
    assert "'adagrad'" in message
    assert error_of(BASE, "model.dropout=1.5").startswith(
        "model.dropout: Input should be less than 1"
    )
    assert error_of(BASE, "model.hidden_size=abc").startswith(
        "model.hidden_size: Input should be a valid integer"
    )


def test_unknown_cell_and_task_suggest_a_name() -> None:
    message = error_of(BASE, "model.cell=lstn")
    assert (
        message.startswith("model.cell: unknown cell; did you mean 'lstm'?") and "'lstn'" in message
    )
    message = error_of({"task": {"name": "addign"}, "train": {"epochs": 1}})
    assert message.startswith("task.name: unknown task; did you mean 'adding'?")


def test_cell_specific_options() -> None:
    message = error_of(BASE, "model.cell=gru", "model.forget_bias=1.0")
    assert message.startswith("model.forget_bias: only cell lstm has forget_bias; cell is 'gru'")
    assert "only cell rnn has nonlinearity" in error_of(BASE, "model.nonlinearity=relu")
    assert "smaller than model.hidden_size" in error_of(BASE, "model.proj_size=200")
    config = cfg.from_dict(cfg.apply_overrides(BASE, ["model.cell=rnn", "model.nonlinearity=relu"]))
    assert config.model.nonlinearity == "relu"


def test_task_owns_its_data_section() -> None:
    message = error_of(BASE, "data.lenght=10")
    assert message.startswith("data.lenght: unknown key; did you mean 'length'?")
    assert error_of(BASE, "data.length=1").startswith(
        "data.length: Input should be greater than or equal to 2"
    )


def test_schedule_union_errors() -> None:
    message = error_of(BASE, "train.schedule.kind=linear")
    assert message.startswith(
        "train.schedule.kind: should be one of 'constant', 'step', 'plateau', 'cosine'"
    )
    message = error_of(
        BASE, "train.schedule.kind=step", "train.schedule.start_epoch=2", "train.schedule.factr=2"
    )
    assert message.splitlines()[0].startswith("train.schedule.factor: required key is missing")
    assert "train.schedule.factr: unknown key; did you mean 'factor'?" in message
    message = error_of(
        BASE,
        "train.schedule.kind=step",
        "train.schedule.start_epoch=2",
        "train.schedule.factor=0.5",
    )
    assert message.startswith("train.schedule.factor: Input should be greater than 1")


def test_cross_field_rules() -> None:
    assert error_of({"task": {"name": "adding"}, "train": {}}).startswith(
        "set train.epochs or train.max_steps"
    )
    assert "not both" in error_of(BASE, "train.grad_clip_norm=1", "train.grad_clip_value=1")
    assert "apply to optimizer 'sgd'" in error_of(BASE, "train.momentum=0.9")


def test_bad_override_syntax_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not of the form section\.key=value"):
        cfg.apply_overrides(BASE, ["train.lr"])
    with pytest.raises(ConfigError, match=r"train\.lr=0\.001 is a value, not a table"):
        cfg.apply_overrides({"train": {"lr": 0.001}}, ["train.lr.x=1"])
    with pytest.raises(
        ConfigError, match="neither a config file nor a shipped recipe; did you mean 'adding'"
    ):
        cfg.load("addin")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        cfg.load(bad)


def test_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "exp.toml"
    path.write_text('[task]\nname = "adding"\n[train]\nepochs = 0\n')
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    assert str(info.value) == f"train.epochs: Input should be greater than 0 (got 0) (in {path})"


def test_python_construction() -> None:
    config = ExperimentConfig(task={"name": "adding"}, data={"length": 9}, train={"max_steps": 5})
    assert config.data.length == 9
    with pytest.raises(ConfigError, match=r"data\.length"):
        ExperimentConfig(task={"name": "adding"}, data={"length": 1}, train={"max_steps": 5})
