"""The ETT table: rnnlab's segment recurrent forecaster on the 16 cells of the ETT protocol.

Trains the recipe of each cell (ETTh1 / ETTh2 / ETTm1 / ETTm2 x horizon 96 / 192 / 336 / 720,
input 96: ``etth1-segrnn``, ``etth1-segrnn-192``, ...) with ``rnnlab train <recipe> --quiet``,
reads the test record of the run's ``metrics.jsonl`` (test MSE / MAE on the z-scored data over
every test window, and ``baseline_linear_mse`` / ``baseline_linear_mae``: rnnlab's closed-form
linear baseline fitted in the same run on the same windows) and writes one table beside the
published input-96 numbers:

- SegRNN (Lin et al. 2023, "SegRNN: Segment Recurrent Neural Network for Long-Term Time Series
  Forecasting", arXiv:2308.11200, look-back 96 results) as quoted in rnnlab issue #19 (ETTh1,
  ETTh2, ETTm1; ETTm2 is left blank: not quoted there).
- DLinear (Zeng et al. 2023), PatchTST (Nie et al. 2023) and iTransformer (Liu et al. 2024,
  "iTransformer: Inverted Transformers Are Effective for Time Series Forecasting", ICLR 2024,
  Table 10, full long-term results, look-back 96; DLinear and PatchTST re-run there at input
  96). Transcribed MSE / MAE; check against the paper before quoting them elsewhere.

Results are appended to ``<out>.csv`` one row per cell as soon as the cell finishes, so an
interrupted table resumes: a cell already in the CSV is skipped unless ``--force``. The markdown
table (``<out>.md``) is rewritten from the whole CSV after every cell; a cell not in the CSV
shows as "not measured". Wall time is the whole ``rnnlab train`` process (data loading, every
epoch, the test evaluation), on whatever machine and load it ran; pass ``--note`` to record
the load.

Run::

    RNNLAB_DATA=path/to/data python benchmarks/ett_table.py                      # all 16
    RNNLAB_DATA=path/to/data python benchmarks/ett_table.py --cells etth1-96,ettm2-192
    python benchmarks/ett_table.py --import etth1-336=runs/etth1-336 --wall 612   # a run done
    python benchmarks/ett_table.py --import etth1-336=RUN --wall 1800 --evaluate  # interrupted
    python benchmarks/ett_table.py --show                                          # table only
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

DATASETS = ("etth1", "etth2", "ettm1", "ettm2")
HORIZONS = (96, 192, 336, 720)
CELLS = tuple(f"{d}-{h}" for d in DATASETS for h in HORIZONS)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "ett_table"

# Published test MSE / MAE at input 96, per cell (None: not available to us).
# SegRNN: Lin et al. 2023, look-back 96, as quoted in issue #19 (MSE only).
SEGRNN_MSE: dict[str, float | None] = {
    "etth1-96": 0.368, "etth1-192": 0.408, "etth1-336": 0.444, "etth1-720": 0.446,
    "etth2-96": 0.278, "etth2-192": 0.359, "etth2-336": 0.421, "etth2-720": 0.432,
    "ettm1-96": 0.330, "ettm1-192": 0.369, "ettm1-336": 0.399, "ettm1-720": 0.454,
    "ettm2-96": None, "ettm2-192": None, "ettm2-336": None, "ettm2-720": None,
}  # fmt: skip
# iTransformer paper (Liu et al. 2024), Table 10, input 96: (MSE, MAE).
DLINEAR: dict[str, tuple[float, float]] = {
    "etth1-96": (0.386, 0.400), "etth1-192": (0.437, 0.432),
    "etth1-336": (0.481, 0.459), "etth1-720": (0.519, 0.516),
    "etth2-96": (0.333, 0.387), "etth2-192": (0.477, 0.476),
    "etth2-336": (0.594, 0.541), "etth2-720": (0.831, 0.657),
    "ettm1-96": (0.345, 0.372), "ettm1-192": (0.380, 0.389),
    "ettm1-336": (0.413, 0.413), "ettm1-720": (0.474, 0.453),
    "ettm2-96": (0.193, 0.292), "ettm2-192": (0.284, 0.362),
    "ettm2-336": (0.369, 0.427), "ettm2-720": (0.554, 0.522),
}  # fmt: skip
PATCHTST: dict[str, tuple[float, float]] = {
    "etth1-96": (0.414, 0.419), "etth1-192": (0.460, 0.445),
    "etth1-336": (0.501, 0.466), "etth1-720": (0.500, 0.488),
    "etth2-96": (0.302, 0.348), "etth2-192": (0.388, 0.400),
    "etth2-336": (0.426, 0.433), "etth2-720": (0.431, 0.446),
    "ettm1-96": (0.329, 0.367), "ettm1-192": (0.367, 0.385),
    "ettm1-336": (0.399, 0.410), "ettm1-720": (0.454, 0.439),
    "ettm2-96": (0.175, 0.259), "ettm2-192": (0.241, 0.302),
    "ettm2-336": (0.305, 0.343), "ettm2-720": (0.402, 0.400),
}  # fmt: skip
ITRANSFORMER: dict[str, tuple[float, float]] = {
    "etth1-96": (0.386, 0.405), "etth1-192": (0.441, 0.436),
    "etth1-336": (0.487, 0.458), "etth1-720": (0.503, 0.491),
    "etth2-96": (0.297, 0.349), "etth2-192": (0.380, 0.400),
    "etth2-336": (0.428, 0.432), "etth2-720": (0.427, 0.445),
    "ettm1-96": (0.334, 0.368), "ettm1-192": (0.377, 0.391),
    "ettm1-336": (0.426, 0.420), "ettm1-720": (0.491, 0.459),
    "ettm2-96": (0.180, 0.264), "ettm2-192": (0.250, 0.309),
    "ettm2-336": (0.311, 0.348), "ettm2-720": (0.412, 0.407),
}  # fmt: skip


@dataclass(frozen=True)
class CellResult:
    """One measured cell: rnnlab's test figures, its linear baseline's, and how it was run."""

    cell: str
    recipe: str
    mse: float
    mae: float
    linear_mse: float
    linear_mae: float
    epochs: int
    wall_s: float
    note: str = ""


def recipe_for(cell: str) -> str:
    """The recipe name of a cell: ``etth1-96`` -> ``etth1-segrnn``, ``etth1-192`` -> ``...-192``."""
    dataset, horizon = parse_cell(cell)
    return f"{dataset}-segrnn" if horizon == 96 else f"{dataset}-segrnn-{horizon}"


def parse_cell(cell: str) -> tuple[str, int]:
    """``"ettm2-192"`` -> ``("ettm2", 192)``; SystemExit naming the cell when it is not one."""
    dataset, _, horizon = cell.strip().lower().rpartition("-")
    if dataset not in DATASETS or not horizon.isdigit() or int(horizon) not in HORIZONS:
        raise SystemExit(f"--cells: {cell!r} is not a cell; expected one of {', '.join(CELLS)}")
    return dataset, int(horizon)


def parse_cells(text: str | None) -> list[str]:
    """The cells of ``--cells a,b`` (all 16 when absent), validated, in table order."""
    if not text:
        return list(CELLS)
    wanted = {"-".join(map(str, parse_cell(part))) for part in text.split(",") if part.strip()}
    return [cell for cell in CELLS if cell in wanted]


def test_record(run_dir: Path) -> dict[str, float]:
    """The last test evaluation record of a run's ``metrics.jsonl``."""
    path = run_dir / "metrics.jsonl"
    found: dict[str, float] | None = None
    with path.open() as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("kind") == "eval" and record.get("split") == "test":
                found = record
    if found is None:
        raise SystemExit(f"{path}: no test evaluation record (did the run finish?)")
    return found


def evaluate_best(run_dir: Path) -> dict[str, float]:
    """A test record for an interrupted run: its best-validation checkpoint on the test split
    (``rnnlab evaluate RUN --split test``), with ``epoch`` the epochs it completed."""
    import rnnlab.api as api

    record: dict[str, float] = dict(api.evaluate(run_dir, "test", "best"))
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    record["epoch"] = sum(json.loads(line).get("kind") == "epoch" for line in lines)
    return record


def result_from_run(
    cell: str,
    run_dir: Path,
    wall_s: float,
    note: str = "",
    record: dict[str, float] | None = None,
) -> CellResult:
    """A :class:`CellResult` read from a finished run directory (or from ``record``)."""
    record = test_record(run_dir) if record is None else record
    return CellResult(
        cell=cell,
        recipe=recipe_for(cell),
        mse=float(record["mse"]),
        mae=float(record["mae"]),
        linear_mse=float(record["baseline_linear_mse"]),
        linear_mae=float(record["baseline_linear_mae"]),
        epochs=int(record.get("epoch", 0)),
        wall_s=float(wall_s),
        note=note,
    )


def load_results(csv_path: Path) -> dict[str, CellResult]:
    """The cells already in the CSV (the last row wins when a cell was re-run with --force)."""
    if not csv_path.is_file():
        return {}
    results: dict[str, CellResult] = {}
    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            results[row["cell"]] = CellResult(
                cell=row["cell"],
                recipe=row["recipe"],
                mse=float(row["mse"]),
                mae=float(row["mae"]),
                linear_mse=float(row["linear_mse"]),
                linear_mae=float(row["linear_mae"]),
                epochs=int(row["epochs"]),
                wall_s=float(row["wall_s"]),
                note=row.get("note", ""),
            )
    return results


def append_result(csv_path: Path, result: CellResult) -> None:
    """Append one row (with the header when the file is new), flushed at once."""
    names = [field.name for field in fields(CellResult)]
    new = not csv_path.is_file() or csv_path.stat().st_size == 0
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        if new:
            writer.writeheader()
        writer.writerow(asdict(result))


def pending(cells: Iterable[str], done: dict[str, CellResult], force: bool) -> list[str]:
    """The cells still to train: all of ``cells`` with ``force``, else those not in ``done``."""
    return [cell for cell in cells if force or cell not in done]


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _wall(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def render_markdown(results: dict[str, CellResult], cells: Sequence[str] = CELLS) -> str:
    """The table: one row per cell, measured or not, and a count of the targets met."""
    lines = [
        "| cell | recipe | rnnlab MSE | rnnlab MAE | linear MSE / MAE | SegRNN MSE | "
        "DLinear | PatchTST | iTransformer | epochs | wall | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    beats_linear = beats_dlinear = at_segrnn = with_segrnn = 0
    for cell in cells:
        segrnn = SEGRNN_MSE[cell]
        dlinear, patchtst, itrans = DLINEAR[cell], PATCHTST[cell], ITRANSFORMER[cell]
        published = (
            f"{_num(segrnn)} | {dlinear[0]:.3f} / {dlinear[1]:.3f} | "
            f"{patchtst[0]:.3f} / {patchtst[1]:.3f} | {itrans[0]:.3f} / {itrans[1]:.3f}"
        )
        result = results.get(cell)
        if result is None:
            lines.append(f"| {cell} | {recipe_for(cell)} | not measured | | | {published} | | | |")
            continue
        beats_linear += result.mse < result.linear_mse
        beats_dlinear += result.mse < dlinear[0]
        if segrnn is not None:
            with_segrnn += 1
            at_segrnn += round(result.mse, 3) <= segrnn
        lines.append(
            f"| {cell} | {result.recipe} | {result.mse:.4f} | {result.mae:.4f} | "
            f"{result.linear_mse:.4f} / {result.linear_mae:.4f} | {published} | "
            f"{result.epochs} | {_wall(result.wall_s)} | {result.note} |"
        )
    measured = sum(cell in results for cell in cells)
    lines += [
        "",
        f"Measured {measured} of {len(cells)} cells. Of those: below rnnlab's linear baseline in "
        f"{beats_linear}, below DLinear (input 96) in {beats_dlinear}, at or below SegRNN's "
        f"input-96 MSE (rounded to 3 places) in {at_segrnn} of the {with_segrnn} with a "
        "published SegRNN figure.",
    ]
    return "\n".join(lines) + "\n"


def train_cell(cell: str, runs_dir: Path, note: str) -> CellResult:
    """Run ``rnnlab train <recipe> --quiet`` for one cell and read back its test record."""
    run_dir = runs_dir / cell
    command = [sys.executable, "-m", "rnnlab", "train", recipe_for(cell), "--quiet"]
    command += ["--run-dir", str(run_dir)]
    start = time.perf_counter()
    completed = subprocess.run(command, check=False)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{cell}: `{' '.join(command)}` exited {completed.returncode}")
    return result_from_run(cell, run_dir, wall, note)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=None, help="comma-separated, e.g. etth1-96,ettm2-192")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="path stem of .csv / .md")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "ett_table")
    parser.add_argument("--force", action="store_true", help="re-train cells already in the CSV")
    parser.add_argument("--note", default="", help="recorded with each new row (e.g. the load)")
    parser.add_argument("--import", dest="imports", action="append", default=[],
                        metavar="CELL=RUN_DIR", help="record a run trained elsewhere")  # fmt: skip
    parser.add_argument("--wall", type=float, default=None, help="wall seconds for --import")
    parser.add_argument("--evaluate", action="store_true",
                        help="--import: test an interrupted run's best checkpoint")  # fmt: skip
    parser.add_argument("--show", action="store_true", help="only print the table")
    args = parser.parse_args(argv)
    csv_path, md_path = args.out.with_suffix(".csv"), args.out.with_suffix(".md")
    done = load_results(csv_path)
    for item in args.imports:
        cell, _, run_dir = item.partition("=")
        cell = "-".join(map(str, parse_cell(cell)))
        if args.wall is None:
            raise SystemExit("--import needs --wall SECONDS (the run's measured wall time)")
        record = evaluate_best(Path(run_dir)) if args.evaluate else None
        result = result_from_run(cell, Path(run_dir), args.wall, args.note, record)
        append_result(csv_path, result)
        done[cell] = result
    if not args.show and not args.imports:
        if not os.environ.get("RNNLAB_DATA"):
            print("note: RNNLAB_DATA unset; the recipes look for ETT under the default roots")
        for cell in pending(parse_cells(args.cells), done, args.force):
            print(f"training {cell} ({recipe_for(cell)}) ...", flush=True)
            result = train_cell(cell, args.runs, args.note)
            append_result(csv_path, result)
            done[cell] = result
            md_path.write_text(render_markdown(done))
            print(f"{cell}: MSE {result.mse:.4f} (linear {result.linear_mse:.4f}), "
                  f"{_wall(result.wall_s)}", flush=True)  # fmt: skip
    table = render_markdown(done)
    if done:
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(table)
    print(table, end="")


if __name__ == "__main__":
    main()
