"""Combine repeated ``suite.py`` runs into one Markdown table: per-row medians of the ratios.

On a shared machine a single run's row can be off by 20%; running the suite several times
and taking each row's median over the runs gives numbers worth quoting.

Usage::

    python benchmarks/suite.py --quick --skip-e2e --json run1.json   # (repeat: run2, run3)
    python benchmarks/combine_results.py run1.json run2.json run3.json > RESULTS-table.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from typing import Any

KEY = ("cell", "hidden", "batch", "option")


def combine(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows keyed by (cell, hidden, batch, option), each value the median over the runs."""
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        for row in run["layers"]:
            grouped[tuple(row[k] for k in KEY)].append(row)
    combined = []
    for key, rows in grouped.items():
        merged: dict[str, Any] = dict(zip(KEY, key, strict=True))
        merged["kernel"] = rows[0]["kernel"]
        merged["runs"] = len(rows)
        for field in ("ms", "torch_ms", "vs_torch", "vs_loop", "vs_ref", "fraction_of_peak"):
            values = [r[field] for r in rows if r.get(field) is not None]
            merged[field] = statistics.median(values) if values else None
        merged["memory_ratio"] = rows[0]["memory_ratio"]  # deterministic
        combined.append(merged)
    return combined


def markdown(rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    lines = [
        f"torch {machine['torch']}, {machine['threads']} thread(s), device {machine['device']}, "
        f"peak {machine['peak_gflops']:.0f} GFLOP/s; medians over {rows[0]['runs']} runs",
        "",
        "| cell | H | B | option | kernel | ms | torch.nn ms | vs torch.nn | vs loop | vs ref "
        "| % peak | saved memory vs torch.nn |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        vs_ref = f"{r['vs_ref']:.2f}x" if r["vs_ref"] is not None else "-"
        memory = f"{r['memory_ratio']:.2f}x" if r["memory_ratio"] is not None else "-"
        lines.append(
            f"| {r['cell']} | {r['hidden']} | {r['batch']} | {r['option']} | {r['kernel']} "
            f"| {r['ms']:.2f} | {r['torch_ms']:.2f} | {r['vs_torch']:.2f}x | {r['vs_loop']:.2f}x "
            f"| {vs_ref} | {100 * r['fraction_of_peak']:.0f}% | {memory} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    runs = []
    for name in args.files:
        with open(name, encoding="utf-8") as handle:
            runs.append(json.load(handle))
    print(markdown(combine(runs), runs[0]["machine"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
