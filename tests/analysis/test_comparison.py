"""Studies: TOML schema, expansion to runs, a tiny study end to end with resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnlab.analysis.comparison.expansion import expand
from rnnlab.analysis.comparison.runner import run_study
from rnnlab.analysis.comparison.study_report import write_report
from rnnlab.analysis.comparison.study_spec import load_study, study_names
from rnnlab.errors import ConfigError

TINY = """
name = "tiny"
description = "two cells, two lengths, two seeds, a few steps"
seeds = [0, 1]
workers = 1
diagnose_task = "adding"

[budget]
max_steps = 6

[base.model]
hidden_size = 4

[base.train]
batch_size = 16
lr = 0.01
log_every_steps = 2
eval_every_steps = 3
device = "cpu"

[cell_options.lstm]
forget_bias = 1.0

[grid]
cell = ["rnn", "lstm"]

[[tasks]]
name = "adding"
lengths = [4, 8]
metric = "mse"
data = { train_samples = 64, valid_samples = 32, test_samples = 32 }
"""


def write(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_expand_gives_every_combination_with_cell_options(tmp_path: Path) -> None:
    specs = expand(load_study(write(tmp_path)))
    assert len(specs) == 2 * 2 * 2
    assert [s.run_id for s in specs[:3]] == [
        "adding-T4-rnn-s0",
        "adding-T4-rnn-s1",
        "adding-T4-lstm-s0",
    ]
    lstm = specs[2].config
    assert lstm["model"] == {"hidden_size": 4, "forget_bias": 1.0, "cell": "lstm"}
    assert lstm["data"]["length"] == 4 and lstm["train"]["max_steps"] == 6
    assert lstm["train"]["seed"] == 0 and "forget_bias" not in specs[0].config["model"]


def test_grid_settings_name_the_runs_and_clip_zero_turns_clipping_off(tmp_path: Path) -> None:
    text = TINY.replace(
        'cell = ["rnn", "lstm"]', 'cell = ["gru"]\nlr = [0.01, 0.003]\ngrad_clip = [1.0, 0.0]'
    )
    specs = expand(load_study(write(tmp_path, text)))
    ids = {s.run_id for s in specs}
    assert "adding-T8-gru-lr0.003-grad_clip0-s1" in ids
    off = next(s for s in specs if s.settings["grad_clip"] == 0.0)
    on = next(s for s in specs if s.settings["grad_clip"] == 1.0)
    assert "grad_clip_norm" not in off.config["train"]
    assert on.config["train"]["grad_clip_norm"] == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("max_steps = 6", ""), "budget.max_steps or budget.seconds"),
        (('cell = ["rnn", "lstm"]', 'cell = ["rnn", "lstn"]'), "lstn"),
        (("seeds = [0, 1]", "seeds = [0, 1]\nsurprise = 1"), "surprise"),
        (('name = "adding"', 'name = "addin"'), "addin"),
    ],
)
def test_bad_studies_are_one_line_errors(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        expand(load_study(write(tmp_path, TINY.replace(*change))))


def test_shipped_studies_expand() -> None:
    assert {"simple-to-gated", "full"} <= set(study_names())
    default = expand(load_study(None))
    cells = {s.cell for s in default}
    assert cells == {"rnn", "lstm", "gru"}
    assert len({s.seed for s in default}) >= 3
    assert {s.task for s in default} == {"adding", "reber"}
    expand(load_study("full"))


def test_unknown_study_name_suggests() -> None:
    with pytest.raises(ConfigError, match="did you mean 'full'"):
        load_study("ful")


def test_tiny_study_end_to_end_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "out"
    lines: list[str] = []
    first = run_study(write(tmp_path), out, progress=lines.append)
    assert len(first.ran) == 8 and first.skipped == []
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 8
    one = results[0]
    for key in (
        "task",
        "length",
        "cell",
        "settings",
        "seed",
        "metric",
        "value",
        "parameters",
        "seconds",
    ):
        assert key in one
    assert one["steps"] == 6 and one["baseline"] == pytest.approx(1 / 6, rel=0.5)
    assert one["parameters"] == 4 * (2 + 4 + 2) + 4 + 1  # RNN(2->4) with two biases + head

    report = write_report(first)
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert (out / "plots" / "gradient_flow_init.png").is_file()
    assert (out / "plots" / "length_adding.png").is_file()
    assert set(report.ratios["trained"]) == {"rnn", "lstm"}
    assert "T=8" in report.gradient[0]

    second = run_study(write(tmp_path), out, progress=lines.append)
    assert second.ran == [] and len(second.skipped) == 8
    assert [r.value for r in second.records] == [r.value for r in first.records]

    # a run cut off before its result.json was written is trained again
    (out / "runs" / "adding-T8-lstm-s1" / "result.json").unlink()
    third = run_study(write(tmp_path), out)
    assert third.ran == ["adding-T8-lstm-s1"]


def test_two_workers_run_in_processes(tmp_path: Path) -> None:
    text = TINY.replace("seeds = [0, 1]", "seeds = [0]").replace(
        "lengths = [4, 8]", "lengths = [4]"
    )
    result = run_study(write(tmp_path, text), tmp_path / "out", workers=2)
    assert sorted(result.ran) == ["adding-T4-lstm-s0", "adding-T4-rnn-s0"]
    assert all(r.steps == 6 for r in result.records)


def test_stop_at_ends_a_run_once_the_valid_metric_passes(tmp_path: Path) -> None:
    text = TINY.replace("seeds = [0, 1]", "seeds = [0]").replace(
        "lengths = [4, 8]", "lengths = [4]"
    )
    text = text.replace('metric = "mse"', 'metric = "mse"\nstop_at = 100.0')
    result = run_study(write(tmp_path, text), tmp_path / "out")
    assert {r.status for r in result.records} == {"target_reached"}
    assert {r.steps for r in result.records} == {3}  # the first evaluation, at step 3


def test_compare_and_diagnose_commands(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from rnnlab.cli.compare import register

    app = typer.Typer()
    register(app)
    text = TINY.replace("seeds = [0, 1]", "seeds = [0]").replace(
        "lengths = [4, 8]", "lengths = [6]"
    )
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(app, ["compare", str(write(tmp_path, text)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "parameters" in result.output and "At T=6 on the adding problem" in result.output
    assert (out / "report.html").is_file()

    result = runner.invoke(app, ["diagnose", str(out / "runs" / "adding-T6-lstm-s0")])
    assert result.exit_code == 0, result.output
    assert (out / "runs" / "adding-T6-lstm-s0" / "diagnosis" / "gates.png").is_file()

    result = runner.invoke(app, ["compare", "no-such-study"])
    assert result.exit_code == 2 and "neither a study file" in result.output
