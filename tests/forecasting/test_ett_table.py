"""``benchmarks/ett_table.py`` without training: cells, the CSV writer, resume, the markdown
table and reading a run's test record, on fake results."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ett_table.py"


@pytest.fixture(scope="module")
def table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ett_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ett_table"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def fake(table: ModuleType, cell: str, mse: float, **kw: object) -> object:
    values = {"mse": mse, "mae": 0.4, "linear_mse": 0.38, "linear_mae": 0.39, "epochs": 6,
              "wall_s": 269.4, "note": "fake"} | kw  # fmt: skip
    return table.CellResult(cell=cell, recipe=table.recipe_for(cell), **values)


def test_cells_and_recipes(table: ModuleType) -> None:
    assert len(table.CELLS) == 16
    assert table.recipe_for("etth1-96") == "etth1-segrnn"
    assert table.recipe_for("ettm2-720") == "ettm2-segrnn-720"
    assert table.parse_cells("ettm2-192, ETTh1-96") == ["etth1-96", "ettm2-192"]
    with pytest.raises(SystemExit, match="'etth3-96' is not a cell"):
        table.parse_cells("etth3-96")
    with pytest.raises(SystemExit, match="is not a cell"):
        table.parse_cells("etth1-100")
    # every cell has a shipped recipe
    recipes = SCRIPT.parents[1] / "src" / "rnnlab" / "recipes"
    assert all((recipes / f"{table.recipe_for(c)}.toml").is_file() for c in table.CELLS)


def test_append_load_and_resume(table: ModuleType, tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    assert table.load_results(csv_path) == {}
    table.append_result(csv_path, fake(table, "etth1-96", 0.3663))
    table.append_result(csv_path, fake(table, "etth2-96", 0.2805))
    done = table.load_results(csv_path)
    assert set(done) == {"etth1-96", "etth2-96"}
    assert done["etth1-96"] == fake(table, "etth1-96", 0.3663)  # round trip, every field
    assert csv_path.read_text().count("cell,recipe") == 1  # one header
    wanted = ["etth1-96", "etth1-192", "etth2-96"]
    assert table.pending(wanted, done, force=False) == ["etth1-192"]
    assert table.pending(wanted, done, force=True) == wanted
    # a forced re-run appends; the last row wins
    table.append_result(csv_path, fake(table, "etth1-96", 0.3600))
    assert table.load_results(csv_path)["etth1-96"].mse == 0.36


def test_markdown_counts_targets_and_marks_unmeasured(table: ModuleType) -> None:
    results = {
        "etth1-96": fake(table, "etth1-96", 0.3663),  # < linear 0.38, < DLinear, <= SegRNN
        "etth1-192": fake(table, "etth1-192", 0.4259, linear_mse=0.4318),  # > SegRNN 0.408
        "ettm2-96": fake(table, "ettm2-96", 0.40),  # no SegRNN figure; above linear
    }
    text = table.render_markdown(results)
    rows = [line for line in text.splitlines() if line.startswith("| ett")]
    assert len(rows) == 16
    assert all(row.count("|") == rows[0].count("|") for row in rows)  # same column count
    assert sum("not measured" in row for row in rows) == 13
    assert "| etth1-96 | etth1-segrnn | 0.3663 | 0.4000 | 0.3800 / 0.3900 | 0.368 |" in text
    assert "4 min 29 s" in text
    assert "Measured 3 of 16 cells" in text
    assert "below rnnlab's linear baseline in 2" in text
    assert "below DLinear (input 96) in 2" in text
    assert "in 1 of the 2 with a published SegRNN figure" in text


def test_result_from_run_reads_the_last_test_record(table: ModuleType, tmp_path: Path) -> None:
    records = [
        {"kind": "eval", "split": "valid", "epoch": 3, "mse": 9.0, "mae": 9.0},
        {"kind": "eval", "split": "test", "epoch": 3, "mse": 0.5, "mae": 0.6,
         "baseline_linear_mse": 0.7, "baseline_linear_mae": 0.8},
        {"kind": "end", "status": "completed"},
    ]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = table.result_from_run("etth2-336", tmp_path, 61.0, "load 6")
    assert (result.mse, result.mae, result.linear_mse, result.linear_mae) == (0.5, 0.6, 0.7, 0.8)
    assert (result.recipe, result.epochs, result.wall_s) == ("etth2-segrnn-336", 3, 61.0)
    (tmp_path / "metrics.jsonl").write_text(json.dumps(records[0]) + "\n")
    with pytest.raises(SystemExit, match="no test evaluation record"):
        table.result_from_run("etth2-336", tmp_path, 1.0)


def test_main_show_and_import(
    table: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    record = {"kind": "eval", "split": "test", "epoch": 2, "mse": 0.3, "mae": 0.35,
              "baseline_linear_mse": 0.34, "baseline_linear_mae": 0.39}  # fmt: skip
    (run / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    out = tmp_path / "table"
    table.main(["--out", str(out), "--import", f"ettm1-96={run}", "--wall", "300"])
    assert "| ettm1-96 | ettm1-segrnn | 0.3000 |" in (tmp_path / "table.md").read_text()
    table.main(["--out", str(out), "--show"])
    assert "Measured 1 of 16 cells" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--wall"):
        table.main(["--out", str(out), "--import", f"ettm1-96={run}"])
