"""Search-space parsing: kinds, conditions, sampling order, overrides, and every error."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from rnnlab import config as config_mod
from rnnlab.tuning import space as space_mod
from rnnlab.tuning.space import SearchSpaceError, parse


def test_kinds_conditions_and_overrides() -> None:
    raw = config_mod.tomllib.loads(
        """
        model.proj_size = { int = [0, 8], step = 4, when = { "model.cell" = "lstm" } }
        train.lr = { log_uniform = [1e-4, 1e-1] }
        model.dropout = { uniform = [0.0, 0.5], step = 0.1 }
        model.hidden_size = { int = [16, 128], log = true }
        model.cell = { choice = ["rnn", "lstm", "gru"] }
        [fixed]
        train.epochs = 2
        """
    )
    space = parse(raw, "s.toml")
    paths = [p.path for p in space.params]
    assert paths.index("model.cell") < paths.index("model.proj_size")  # condition first
    assert space.fixed == ["train.epochs=2"]
    seen_cells = set()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        values = space.sample(trial)
        seen_cells.add(values["model.cell"])
        assert ("model.proj_size" in values) == (values["model.cell"] == "lstm")
        assert 1e-4 <= values["train.lr"] <= 1e-1
        assert values.get("model.proj_size", 0) in (0, 4, 8)
        assert round(values["model.dropout"] * 10, 6) == round(values["model.dropout"] * 10)
        cfg = config_mod.load(
            "adding", [*space.fixed, *space.to_overrides(values), "model.hidden_size=16"]
        )
        assert cfg.model.cell == values["model.cell"]
        study.tell(trial, 0.0)
    assert seen_cells == {"rnn", "lstm", "gru"}


def test_shipped_adding_space_loads_and_fits_the_recipe() -> None:
    assert "adding" in space_mod.space_names()
    space = space_mod.load("adding")
    space.check_paths(config_mod.load("adding"))
    assert {p.path for p in space.params} >= {"train.lr", "model.cell"}


def test_check_paths_names_the_entry() -> None:
    space = parse({"train": {"lrr": {"uniform": [0.1, 0.2]}}}, "s.toml")
    with pytest.raises(
        SearchSpaceError, match=r"s.toml: train.lrr: unknown config key 'lrr'; did you mean 'lr'"
    ):
        space.check_paths(config_mod.load("adding"))
    space = parse({"train": {"lr": {"x": {"uniform": [0.1, 0.2]}}}}, "s.toml")
    with pytest.raises(SearchSpaceError, match=r"train.lr.x: train.lr is a value"):
        space.check_paths(config_mod.load("adding"))


def test_load_errors(tmp_path: Any) -> None:
    with pytest.raises(SearchSpaceError, match="neither a search-space file nor a shipped space"):
        space_mod.load("addding")
    bad = tmp_path / "bad.toml"
    bad.write_text("train.lr = {", encoding="utf-8")
    with pytest.raises(SearchSpaceError, match=r"bad.toml: invalid TOML"):
        space_mod.load(bad)


CHOICE = {"choice": ["rnn", "lstm"]}
BAD: list[tuple[dict[str, Any], str]] = [
    ({}, r"the space has no entries"),
    ({"train": {"lr": 0.1}}, r"train.lr: expected a table .* put plain values under \[fixed\]"),
    ({"fixed": 3, "train": {"lr": CHOICE}}, r"\[fixed\] must be a table"),
    (
        {"train": {"lr": {"uniform": [0, 1], "choice": [1]}}},
        r"train.lr: give exactly one of .*found: uniform, choice",
    ),
    (
        {"train": {"lr": {"when": {"model.cell": "lstm"}}}},
        r"train.lr: give exactly one of .*found: none",
    ),
    (
        {"train": {"lr": {"log_uniform": [1e-3, 1], "stepp": 1}}},
        r"train.lr: unknown key 'stepp'.*allowed: log_uniform, when",
    ),
    (
        {"train": {"lr": {"log_uniform": [1e-3, 1], "step": 1}}},
        r"train.lr: unknown key 'step' for a log_uniform",
    ),
    ({"model": {"cell": {"choice": []}}}, r"model.cell: choice needs a non-empty list"),
    (
        {"model": {"cell": {"choice": "lstm"}}},
        r"model.cell: choice needs a non-empty list \(got 'lstm'\)",
    ),
    ({"model": {"cell": {"choice": [[1]]}}}, r"model.cell: choice values must be .* \(got \[1\]\)"),
    ({"model": {"cell": {"choice": ["a", "a"]}}}, r"model.cell: choice has a repeated value"),
    ({"train": {"lr": {"uniform": [1]}}}, r"train.lr: uniform needs \[low, high\], two numbers"),
    ({"train": {"lr": {"uniform": ["a", 1]}}}, r"train.lr: uniform needs \[low, high\]"),
    (
        {"train": {"lr": {"uniform": [1, 1]}}},
        r"train.lr: uniform needs low < high \(got \[1, 1\]\)",
    ),
    ({"train": {"lr": {"uniform": [0, float("inf")]}}}, r"train.lr: uniform needs low < high"),
    ({"train": {"lr": {"log_uniform": [0.0, 0.1]}}}, r"train.lr: log_uniform needs 0 < low < high"),
    (
        {"train": {"lr": {"uniform": [0.0, 1.0], "step": 2.0}}},
        r"train.lr: uniform step must be a number in \(0, high - low\]",
    ),
    ({"train": {"lr": {"uniform": [0.0, 1.0], "step": -1}}}, r"train.lr: uniform step"),
    ({"model": {"hidden_size": {"int": [1.5, 8]}}}, r"model.hidden_size: int needs integer bounds"),
    (
        {"model": {"hidden_size": {"int": [8, 64], "step": 0}}},
        r"model.hidden_size: int step must be an integer >= 1",
    ),
    (
        {"model": {"hidden_size": {"int": [8, 64], "step": 1.5}}},
        r"model.hidden_size: int step must be an integer",
    ),
    (
        {"model": {"hidden_size": {"int": [8, 64], "log": "yes"}}},
        r"model.hidden_size: log must be true or false",
    ),
    (
        {"model": {"hidden_size": {"int": [0, 64], "log": True}}},
        r"model.hidden_size: int with log = true needs low >= 1",
    ),
    (
        {"model": {"hidden_size": {"int": [8, 64], "log": True, "step": 8}}},
        r"model.hidden_size: int with log = true cannot have step=8",
    ),
    (
        {"model": {"hidden_size": {"int": [8, 60], "step": 16}}},
        r"model.hidden_size: int range \[8, 60\] is not a whole number of steps of 16",
    ),
    (
        {"model": {"proj_size": {"int": [0, 8], "when": "lstm"}}},
        r"model.proj_size: when must be a table",
    ),
    (
        {"model": {"proj_size": {"int": [0, 8], "when": {"model.cell": []}}}},
        r"model.proj_size: when 'model.cell' has an empty list",
    ),
    (
        {"model": {"proj_size": {"int": [0, 8], "when": {"model.cel": "lstm"}}, "cell": CHOICE}},
        r"model.proj_size: when refers to 'model.cel', which is not an entry of the space; "
        r"did you mean 'model.cell'",
    ),
    (
        {"model": {"proj_size": {"int": [0, 8], "when": {"model.proj_size": 1}}}},
        r"model.proj_size: when refers to the entry itself",
    ),
    (
        {
            "model": {
                "proj_size": {"int": [0, 8], "when": {"model.hidden_size": 8}},
                "hidden_size": {"int": [8, 16]},
            }
        },
        r"model.proj_size: when refers to 'model.hidden_size', a int entry; "
        r"conditions must refer to choice entries",
    ),
    (
        {"model": {"proj_size": {"int": [0, 8], "when": {"model.cell": "gru"}}, "cell": CHOICE}},
        r"model.proj_size: when model.cell = 'gru' is not one of its choices \('rnn', 'lstm'\)",
    ),
    (
        {
            "model": {
                "cell": {"choice": ["a", "b"], "when": {"model.pooling": "a"}},
                "pooling": {"choice": ["a", "b"], "when": {"model.cell": "a"}},
            }
        },
        r"model.cell: circular when conditions \(model.cell -> model.pooling -> model.cell\)",
    ),
    (
        {"fixed": {"train": {"lr": 0.1}}, "train": {"lr": CHOICE}},
        r"train.lr: both in \[fixed\] and searched",
    ),
]


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_every_error_names_the_entry(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(SearchSpaceError, match=rf"^s.toml: {message}"):
        parse(raw, "s.toml")


def test_pruner_warmup_by_name() -> None:
    import optuna

    from rnnlab.tuning.failures import TuningError
    from rnnlab.tuning.pruning import make_pruner

    median = make_pruner("median:300")
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert median._n_warmup_steps == 300
    assert make_pruner("median")._n_warmup_steps == 0
    assert isinstance(make_pruner("halving:64"), optuna.pruners.SuccessiveHalvingPruner)
    with pytest.raises(TuningError, match="the part after ':' must be a whole number of steps"):
        make_pruner("median:soon")
