"""Studies end to end on a tiny adding task: outputs, pruning, failures, workers, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from rnnlab import config as config_mod
from rnnlab.tuning import space as space_mod
from rnnlab.tuning.failures import FAIL_REASON
from rnnlab.tuning.search import tune
from rnnlab.tuning.storage import default_storage, open_storage

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "data.length=6",
    "data.train_samples=64",
    "data.valid_samples=32",
    "data.test_samples=32",
    "model.hidden_size=8",
    "train.batch_size=16",
    "train.epochs=2",
    "train.log_every_steps=4",
    "train.checkpoint_every=1000",
    "train.device=cpu",
]
LR_SPACE = {"train": {"lr": {"log_uniform": [1e-3, 3e-2]}}}


def _study(folder: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(default_storage(folder)))


def test_tiny_study_end_to_end(tmp_path: Path) -> None:
    space = space_mod.parse(
        {
            **LR_SPACE,
            "model": {
                "cell": {"choice": ["gru", "lstm"]},
                "proj_size": {"int": [0, 4], "step": 4, "when": {"model.cell": "lstm"}},
            },
        }
    )
    result = tune("adding", space, trials=4, overrides=TINY, study_dir=tmp_path, pruner="none")
    assert result.counts == {"complete": 4}
    study = _study(tmp_path, "adding")
    assert result.best_value == min(t.value for t in study.trials if t.value is not None)
    best = config_mod.load(result.best_toml)  # a full config that `rnnlab train` accepts
    assert best.train.lr == pytest.approx(result.best_params["train.lr"])
    assert best.model.cell == result.best_params["model.cell"]
    assert best.data.length == 6
    rows = (tmp_path / "trials.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("number,state,value")
    assert {p.name for p in result.plots} == {"history.png", "importance.png", "top_params.png"}
    assert all(p.stat().st_size > 1000 for p in result.plots)
    for trial in study.trials:  # each trial trained in its own run directory
        assert (Path(trial.user_attrs["run_dir"]) / "config.toml").is_file()
    again = tune("adding", space, trials=4, overrides=TINY, study_dir=tmp_path, pruner="none")
    assert len(_study(tmp_path, "adding").trials) == 4  # complete: nothing more to run
    assert again.best_value == result.best_value


def _enqueued(folder: Path, name: str, params: list[dict[str, Any]]) -> None:
    study = optuna.create_study(
        storage=open_storage(default_storage(folder)), study_name=name, direction="minimize"
    )
    for values in params:
        study.enqueue_trial(values)


def test_pruning_stops_a_trial_worse_than_the_median(tmp_path: Path) -> None:
    good, bad = 0.03, 1e-7  # lr 1e-7 leaves the model at its (identically seeded) start
    _enqueued(tmp_path, "p", [{"train.lr": good}, {"train.lr": good}, {"train.lr": bad}])
    space = space_mod.parse({"train": {"lr": {"choice": [good, bad]}}})
    overrides = [*TINY, "data.train_samples=128", "train.epochs=3", "train.eval_every_steps=4"]
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2)
    result = tune(
        "adding",
        space,
        trials=3,
        overrides=overrides,
        study_name="p",
        study_dir=tmp_path,
        pruner=pruner,
        plots=False,
    )
    assert result.counts == {"complete": 2, "pruned": 1}
    trials = _study(tmp_path, "p").trials
    assert [t.state for t in trials[:2]] == [TrialState.COMPLETE] * 2
    assert trials[2].params["train.lr"] == bad and trials[2].state == TrialState.PRUNED
    total_steps = 3 * 128 // 16
    assert max(trials[0].intermediate_values) == total_steps
    assert max(trials[2].intermediate_values) < total_steps  # stopped early
    end = (Path(trials[2].user_attrs["run_dir"]) / "metrics.jsonl").read_text().splitlines()[-1]
    assert '"pruned at step' in end


def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    _enqueued(
        tmp_path,
        "f",
        [
            {"train.lr": 0.01, "model.proj_size": 16},  # proj_size >= hidden_size: bad config
            {"train.lr": 1e30, "model.proj_size": 0},  # diverges: non-finite loss
            {"train.lr": 0.01, "model.proj_size": 0},
        ],
    )
    space = space_mod.parse(
        {"train": {"lr": {"choice": [0.01, 1e30]}}, "model": {"proj_size": {"choice": [0, 16]}}}
    )
    result = tune(
        "adding",
        space,
        trials=3,
        overrides=TINY,
        study_name="f",
        study_dir=tmp_path,
        pruner="none",
        plots=False,
    )
    assert result.counts == {"fail": 2, "complete": 1}
    trials = _study(tmp_path, "f").trials
    assert "proj_size" in trials[0].user_attrs[FAIL_REASON]
    assert "NonFiniteLossError" in trials[1].user_attrs[FAIL_REASON]
    assert trials[2].state == TrialState.COMPLETE
    assert "proj_size" in (tmp_path / "trials.csv").read_text()


def test_open_storage_waits_out_a_concurrent_schema_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers opening a new database together: the loser of the schema race retries."""
    import sqlalchemy.exc

    from rnnlab.tuning import storage as storage_mod

    real = storage_mod.RDBStorage
    calls = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", {}, Exception())
        return real(*args, **kwargs)

    monkeypatch.setattr(storage_mod, "RDBStorage", racing)
    storage = open_storage(default_storage(tmp_path))
    assert len(calls) == 2
    assert optuna.create_study(storage=storage, study_name="s").study_name == "s"
