"""Claims: the verdict and sentence logic on made-up numbers, a tiny claims study end to end
(shared references, resume, report), and the time per step that leaves set-up out."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

from rnnlab.analysis.comparison.claim_sentences import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    ArmStats,
    claim_sentence,
    sweep_sentence,
    verdict,
)
from rnnlab.analysis.comparison.expansion import expand
from rnnlab.analysis.comparison.runner import run_study
from rnnlab.analysis.comparison.study_report import write_report
from rnnlab.analysis.comparison.study_spec import load_study, study_names
from rnnlab.errors import ConfigError

# ------------------------------------------------------------------ sentences


def arm(name: str, values: list[float], train: list[float] = ()) -> ArmStats:  # type: ignore[assignment]
    return ArmStats.of(name, values, train, parameters=1000, seconds=[10.0, 12.0, 30.0])


def test_a_clear_effect_the_claimed_way_holds_and_the_sentence_has_the_numbers() -> None:
    ref = arm("no dropout", [140.0, 142.0, 144.0], train=[100.0, 102.0, 104.0])
    var = arm("dropout 0.5", [120.0, 121.0, 122.0], train=[114.0, 115.0, 116.0])
    assert verdict(ref, var, "lower") == HOLDS
    text = claim_sentence("PTB", "valid perplexity", ref, var, "lower")
    assert text.startswith("on PTB, dropout 0.5 lowers valid perplexity from 142 ± 2")
    assert "to 121 ± 1" in text
    assert "narrows the train-valid gap from 40 to 6" in text
    assert text.endswith("; holds")


def test_a_gap_equal_as_printed_is_left_not_widened() -> None:
    ref = arm("no dropout", [508.0, 510.0, 512.0], train=[575.0, 577.0, 579.0])
    var = arm("dropout 0.5", [560.0, 565.0, 570.0], train=[632.0, 632.2, 632.4])
    text = claim_sentence("PTB", "valid perplexity", ref, var, "lower")
    assert "leaves the train-valid gap at -67" in text and "widens" not in text


def test_a_clear_effect_the_other_way_does_not_hold() -> None:
    ref = arm("no dropout", [120.0, 121.0, 122.0])
    var = arm("dropout 0.5", [140.0, 142.0, 144.0])
    assert verdict(ref, var, "lower") == FAILS
    text = claim_sentence("PTB", "valid perplexity", ref, var, "lower")
    assert "raises valid perplexity from 121 ± 1" in text
    assert text.endswith("does not hold here (expected lower)")


def test_an_effect_within_the_seed_spread_is_inconclusive_either_way() -> None:
    ref = arm("a", [100.0, 110.0, 120.0])  # std 10
    better = arm("b", [95.0, 105.0, 115.0])  # 5 lower, spread 20
    assert verdict(ref, better, "lower") == INCONCLUSIVE
    assert verdict(ref, better, "higher") == INCONCLUSIVE
    assert "within the seed spread" in claim_sentence("X", "m", ref, better, "lower")


def test_higher_is_the_mirror_of_lower() -> None:
    ref = arm("uni", [0.80, 0.81, 0.82])
    var = arm("bi", [0.90, 0.91, 0.92])
    assert verdict(ref, var, "higher") == HOLDS
    assert verdict(ref, var, "lower") == FAILS


def test_one_seed_gives_no_spread_so_no_verdict() -> None:
    ref, var = arm("a", [100.0]), arm("b", [50.0])
    assert verdict(ref, var, "lower") == INCONCLUSIVE
    assert "one seed" in claim_sentence("X", "m", ref, var, "lower")


def test_similar_holds_within_the_tolerance_and_fails_beyond_the_spread() -> None:
    lstm = arm("LSTM", [100.0, 101.0, 102.0])
    assert verdict(lstm, arm("GRU", [103.0, 104.0, 105.0]), "similar", 0.05) == HOLDS
    assert verdict(lstm, arm("GRU", [120.0, 121.0, 122.0]), "similar", 0.05) == FAILS
    noisy = arm("GRU", [90.0, 108.0, 126.0])  # 7 % off, but std 18
    assert verdict(lstm, noisy, "similar", 0.05) == INCONCLUSIVE
    text = claim_sentence("PTB", "valid perplexity", lstm, arm("GRU", [103.0, 104.0, 105.0]),
                          "similar")  # fmt: skip
    assert "GRU reaches valid perplexity 104 ± 1 against 101 ± 1 for LSTM" in text
    assert "1.00x the parameters and 1.00x the time per step of LSTM" in text


def test_a_diverged_arm_counts_as_worse_and_the_median_ignores_one_slow_seed() -> None:
    ref = arm("clip 5", [150.0, 152.0])
    diverged = arm("no clipping", [160.0, math.inf])
    assert diverged.mean == math.inf and verdict(ref, diverged, "higher") == HOLDS
    assert "diverged" in claim_sentence("PTB", "valid perplexity", ref, diverged, "higher")
    assert ref.seconds_per_1000_steps == 12.0  # median of 10, 12 and a slow 30


def test_sweep_sentence_compares_the_best_with_the_worst_setting() -> None:
    arms = [arm("lr=1", [120.0, 121.0]), arm("lr=0.1", [200.0, 204.0]), arm("lr=4", [150.0, 151.0])]
    text = sweep_sentence("PTB", "valid perplexity", arms)
    assert "from 120 ± 1 (lr=1) to 202 ± 3 (lr=0.1)" in text and text.endswith("holds")
    flat = [arm("a", [100.0, 110.0]), arm("b", [101.0, 111.0])]
    assert sweep_sentence("PTB", "m", flat).endswith(
        INCONCLUSIVE + " (the difference is within the seed spread)"
    )


# ---------------------------------------------------------------- a tiny study

TINY = """
name = "tiny-claims"
seeds = [0, 1]
workers = 1

[budget]
max_steps = 6

[bases.adding]
recipe = "adding"
data = { length = 8, train_samples = 64, valid_samples = 32, test_samples = 32 }
model = { hidden_size = 4 }
train = { batch_size = 16, log_every_steps = 2, eval_every_steps = 3, checkpoint_every = 100 }

[[claims]]
name = "cells"
base = "adding"
domain = "adding"
metric = "mse"
train_eval_batches = 2

[[claims.variants]]
name = "LSTM"

[[claims.variants]]
name = "GRU"
set = { model = { cell = "gru" } }
expect = "similar"

[[claims]]
name = "size"
base = "adding"
metric = "mse"

[[claims.variants]]
name = "h4"

[[claims.variants]]
name = "h8"
set = { model = { hidden_size = 8 } }
expect = "lower"
"""


def write(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_claims_studies_load_and_expand() -> None:
    assert {"claims", "claims-quick"} <= set(study_names())
    for name in ("claims", "claims-quick"):
        specs = expand(load_study(name))
        assert any(s.same_as for s in specs)  # shared references are trained once
        assert {s.task for s in specs} == {"language", "speech-digits", "forecasting"}
        assert all(s.config["train"]["max_steps"] < 10**9 for s in specs)


def test_a_claims_study_runs_shares_resumes_and_reports(tmp_path: Path) -> None:
    path = write(tmp_path)
    specs = expand(load_study(path))
    shared = {s.run_id: s.same_as for s in specs if s.same_as}
    assert shared == {"size-h4-s0": "cells-LSTM-s0", "size-h4-s1": "cells-LSTM-s1"}
    result = run_study(path, tmp_path / "out")
    assert len(result.records) == 8 and len(result.ran) == 6
    assert not (tmp_path / "out" / "runs" / "size-h4-s0").exists()
    lstm = next(r for r in result.records if r.run_id == "cells-LSTM-s0")
    assert lstm.train and "mse" in lstm.train and "mse" in lstm.valid
    assert lstm.steps == 6
    report = write_report(result, gradient_flow=False)
    text = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "## Claims" in text and "on adding, GRU reaches valid MSE" in text
    assert (tmp_path / "out" / "plots" / "claim_cells.png").is_file()
    assert len(report.claims) == 2 and report.claims[1].rows[0][-1] == "reference"
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<img src='plots/claim_size.png'" in html
    again = run_study(path, tmp_path / "out")
    assert again.ran == [] and len(again.skipped) == 6
    changed = write(
        tmp_path,
        TINY.replace(
            'name = "h8"\nset = { model = { hidden_size = 8 } }',
            'name = "h8"\nset = { model = { hidden_size = 6 } }',
        ),
    )
    lines: list[str] = []
    third = run_study(changed, tmp_path / "out", progress=lines.append)
    assert sorted(third.ran) == ["size-h8-s0", "size-h8-s1"]  # a changed config reruns
    assert any("config changed" in line for line in lines)


def test_bad_claims_are_one_line_errors(tmp_path: Path) -> None:
    bad_base = TINY.replace('base = "adding"\ndomain', 'base = "adingg"\ndomain')
    with pytest.raises(ConfigError, match="base 'adingg' is not one of"):
        load_study(write(tmp_path, bad_base))
    one_arm = TINY.split('[[claims.variants]]\nname = "GRU"')[0]
    with pytest.raises(ConfigError, match="at least two"):
        load_study(write(tmp_path, one_arm))


# ------------------------------------------------------------------ timing


def test_time_per_step_leaves_out_a_slow_first_step(tmp_path: Path, monkeypatch: Any) -> None:
    from rnnlab.tasks import TASKS

    task_class = TASKS.get("adding")
    original = task_class.step
    calls = {"n": 0}

    def slow_first(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(1.5)  # a one-time set-up cost in the first step (a library build)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(task_class, "step", slow_first)
    one = TINY.replace("seeds = [0, 1]", "seeds = [0]").split('[[claims]]\nname = "size"')[0]
    result = run_study(write(tmp_path, one), tmp_path / "out")
    record = result.records[0]
    assert calls["n"] >= 6
    assert record.seconds > 1.5  # the wall time has the slow step ...
    assert record.seconds_per_1000_steps < 1500 / 6  # ... the time per step does not
    stored = json.loads((tmp_path / "out" / "runs" / record.run_id / "result.json").read_text())
    assert stored["seconds_per_1000_steps"] == record.seconds_per_1000_steps
