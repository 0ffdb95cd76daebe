"""``rnnlab compare`` on a claims study: the estimate before training, the claim tables and
sentences after, and a bad study file as one line with exit status 2."""

from __future__ import annotations

from pathlib import Path

from tests.analysis.test_claims import TINY
from typer.testing import CliRunner

from rnnlab.cli import app


def test_compare_runs_a_claims_study_and_prints_its_verdicts(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(TINY.replace("seeds = [0, 1]", "seeds = [0]"), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["compare", str(study), "--out", str(tmp_path / "out"), "--no-gradient-flow"]
    )
    assert result.exit_code == 0, result.output
    assert "3 runs to train (1 more shared)" in result.output
    assert "verdict" in result.output and "reference" in result.output  # the claim tables
    assert "on adding, GRU reaches valid MSE" in " ".join(result.output.split())
    assert (tmp_path / "out" / "report.html").is_file()


def test_compare_refuses_a_claim_on_an_unknown_base_in_one_line(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(TINY.replace('base = "adding"\nmetric', 'base = "nope"\nmetric'), "utf-8")
    result = CliRunner().invoke(app, ["compare", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "claim 'size': base 'nope' is not one of [bases] (adding)" in result.output
    assert "Traceback" not in result.output
