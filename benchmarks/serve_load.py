"""Throughput and latency of ``rnnlab serve`` under concurrent clients.

Starts ``rnnlab serve RUN --port 0`` as its own process, then ``--clients`` threads (each with
its own keep-alive HTTP connection) send ``--requests`` requests in all, as fast as answers
come. Prints requests per second and p50/p90/p99 latency, beside the baseline: the same
predictor called in this process without HTTP, one request after another (``rnnlab.load``),
so ``vs direct`` is the share of the model's own throughput the server keeps.

Without ``--run-dir`` it first trains a tiny run of the task (a few seconds; generated data:
a 14-word corpus, or an hourly sine series).

Usage::

    python benchmarks/serve_load.py                          # language, 8 clients
    python benchmarks/serve_load.py --task forecasting --clients 16 --requests 800
    python benchmarks/serve_load.py --run-dir runs/ptb-small --length 50 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import torch

import rnnlab
from rnnlab import api
from rnnlab import config as cfg

SENTENCES = ["the cat sat on the mat", "a dog ate the bone", "the bird sang a song"]


def tiny_language_run(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (corpus / f"{split}.txt").write_text("\n".join(SENTENCES * 30) + "\n")
    config = cfg.from_dict(
        {
            "task": {"name": "language"},
            "data": {"path": str(corpus)},
            "model": {"cell": "lstm", "hidden_size": 64, "embedding_size": 32},
            "train": {"epochs": 2, "batch_size": 8, "seq_len": 10, "device": "cpu"},
        }
    )
    api.train(config, run_dir=root / "run", quiet=None)
    return root / "run"


def sine_rows(rows: int) -> pd.DataFrame:
    t = np.arange(rows, dtype=float)
    return pd.DataFrame(
        {
            "time": pd.date_range("2022-03-01", periods=rows, freq="h"),
            "y": 50.0 + 20.0 * np.sin(2 * np.pi * t / 24),
            "x": np.cos(2 * np.pi * t / 24),
        }
    )


def tiny_forecasting_run(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    sine_rows(600).to_csv(root / "train.csv", index=False)
    config = cfg.from_dict(
        {
            "task": {"name": "forecasting"},
            "data": {
                "path": str(root / "train.csv"),
                "targets": ["y"],
                "past_covariates": ["x"],
                "calendar": ["hour"],
                "input_length": 48,
                "horizon": 12,
                "gaussian": True,
            },
            "model": {"cell": "gru", "hidden_size": 64},
            "train": {"epochs": 2, "batch_size": 32, "device": "cpu"},
        }
    )
    api.train(config, run_dir=root / "run", quiet=None)
    return root / "run"


def request_for(task: str, length: int) -> tuple[str, dict[str, Any]]:
    """The route and JSON body every client sends."""
    if task == "language":
        return "/generate", {"prompt": "the cat", "length": length, "seed": 1}
    part = sine_rows(600).iloc[-60:].copy()
    part["time"] = part["time"].astype(str)
    return "/forecast", {"rows": part.to_dict(orient="records")}


def direct(run_dir: Path, task: str, body: dict[str, Any], count: int) -> float:
    """Requests per second of the predictor called in this process, one after another."""
    predictor = rnnlab.load(run_dir)
    if task == "language":

        def call() -> Any:
            return predictor.generate(**body)  # type: ignore[union-attr]
    else:

        def call() -> Any:
            return predictor.forecast(body["rows"])  # type: ignore[union-attr]

    call()  # warm-up
    start = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - start)


def start_server(run_dir: Path, threads: int) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "rnnlab", "serve", str(run_dir), "--port", "0"]
    process = subprocess.Popen(
        [*command, "--threads", str(threads)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if " on http" not in line:
        process.kill()
        raise SystemExit(f"rnnlab serve did not start: {line!r}")
    return process, line.split(" on ")[1].split()[0]


def load(url: str, route: str, body: dict[str, Any], clients: int, total: int) -> dict[str, Any]:
    """``total`` requests from ``clients`` threads; latencies in ms and the wall time."""
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    remaining = [total]

    def client() -> None:
        with httpx.Client(base_url=url, timeout=300.0) as http:
            http.post(route, json=body)  # warm the connection (not counted)
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                start = time.perf_counter()
                try:
                    status = http.post(route, json=body).status_code
                except httpx.HTTPError:  # no answer at all: a lost request, counted
                    with lock:
                        failures.append(-1)
                    continue
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
                    if status != 200:
                        failures.append(status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "clients": clients,
        "requests": total,
        "failures": len(failures),
        "answered": len(latencies),  # every request, unless some got no answer at all
        "rps": total / wall,
        "p50_ms": cuts[49],
        "p90_ms": cuts[89],
        "p99_ms": cuts[98],
        "max_ms": max(latencies),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("language", "forecasting"), default="language")
    parser.add_argument("--run-dir", type=Path, help="A trained run (default: train a tiny one).")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=400, help="Requests per client count.")
    parser.add_argument("--length", type=int, default=20, help="Tokens per /generate request.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both sides).")
    parser.add_argument("--json", type=Path, help="Also write the results there.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        run_dir = args.run_dir
        if run_dir is None:
            make = tiny_language_run if args.task == "language" else tiny_forecasting_run
            run_dir = make(Path(folder))
        route, body = request_for(args.task, args.length)
        torch.set_num_threads(args.threads)
        baseline = direct(run_dir, args.task, body, max(50, args.requests // 4))
        process, url = start_server(run_dir, args.threads)
        try:
            rows = [load(url, route, body, n, args.requests) for n in args.clients]
        finally:
            process.terminate()
            process.wait(timeout=60)

    what = f"{route} ({args.length} tokens)" if args.task == "language" else route
    print(
        f"rnnlab serve, {args.task} run, {what}; {os.cpu_count()} CPU cores, torch threads "
        f"{args.threads}; direct (in "
        f"process, no HTTP, serial): {baseline:.1f} req/s"
    )
    print(
        "| clients | requests | answered | failures | req/s | vs direct | p50 ms | p90 ms "
        "| p99 ms | max ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['clients']} | {row['requests']} | {row['answered']} | {row['failures']} | "
            f"{row['rps']:.1f} | "
            f"{row['rps'] / baseline:.2f} | {row['p50_ms']:.1f} | {row['p90_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['max_ms']:.1f} |"
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps({"task": args.task, "direct_rps": baseline, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
