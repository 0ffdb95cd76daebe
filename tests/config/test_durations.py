"""Durations (``train.time_budget``, a budget schedule's warm-up): accepted forms, errors."""

from __future__ import annotations

import pytest

from rnnlab import config as config_mod
from rnnlab.config import BudgetSchedule
from rnnlab.config.durations import format_duration, parse_duration
from rnnlab.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("30m", 1800.0), ("1h30m", 5400.0), ("2h", 7200.0), ("1h0m5s", 3605.0)],
)
def test_durations_people_write(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("value", ["", "90", "1.5h", "30 min", "m", "30m1h", "0s", 90, None])
def test_anything_else_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="duration such as '90s', '30m', '1h30m' or '2h'"):
        parse_duration(value)


def test_format_duration_reads_back() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(125) == "2m5s"
    assert format_duration(12.34) == "12.3s"


@pytest.mark.parametrize("value", ["90", "1.5h", "soon"])
def test_time_budget_error_names_the_field(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_mod.load("adding", [f"train.time_budget={value}"])
    message = str(caught.value)
    assert message.startswith("train.time_budget: expected a duration")
    assert "\n" not in message


def test_time_budget_alone_is_enough_and_round_trips() -> None:
    cfg = config_mod.from_dict(
        {
            "task": {"name": "adding"},
            "train": {"time_budget": "1h30m", "schedule": {"kind": "budget", "warmup": "2m"}},
        }
    )
    assert cfg.train.epochs is None and cfg.train.max_steps is None
    assert cfg.train.time_budget_seconds == 5400.0
    schedule = cfg.train.schedule
    assert isinstance(schedule, BudgetSchedule)
    assert schedule.warmup_fraction(5400.0) == pytest.approx(120 / 5400)
    again = config_mod.from_dict(cfg.to_dict())
    assert again.train == cfg.train


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"epochs": 1, "schedule": {"kind": "budget"}}, "runs over train.time_budget"),
        ({"time_budget": "1m", "schedule": {"kind": "budget", "warmup": "2m"}}, "not shorter"),
        ({"time_budget": "1m", "schedule": {"kind": "budget", "warmup": 1.5}}, "fraction"),
        ({"time_budget": "1m", "schedule": {"kind": "cosine"}}, 'kind = "cosine" counts steps'),
        ({}, "train.time_budget"),
    ],
)
def test_budget_settings_that_do_not_fit(train: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_mod.from_dict({"task": {"name": "adding"}, "train": train})
