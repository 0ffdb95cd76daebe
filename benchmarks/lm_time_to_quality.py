"""Time to quality on PTB: rnnlab's ``ptb-30m`` recipe against PyTorch's word_language_model.

Both programs train at the same time, each pinned to its own core (``taskset -c``) with one
thread (``OMP_NUM_THREADS=1``), for the same wall-time budget:

- rnnlab: ``rnnlab train <recipe> --budget <budget>`` (default recipe ``ptb-30m``); its
  validation records in ``metrics.jsonl`` carry ``elapsed_seconds`` and the run ends with
  the test perplexity of its best checkpoint, all inside the budget;
- peer: ``../shared/peers/word_language_model/main.py`` with its defaults (2 x LSTM 200,
  dropout 0.2, SGD lr 20 divided by 4 on a plateau, BPTT 35, batch 20, 40 epochs), run
  unmodified; each ``end of epoch`` line is time-stamped as it is printed (seconds since the
  program started), and at the budget it gets SIGINT, its own "exit early" path, which
  loads its best checkpoint and prints the test perplexity (that test runs after the
  budget, in the peer's favour).

The table gives, at each minute mark, the last validation perplexity each program had
measured by then (and when). Nothing is tuned here: both use their shipped defaults.

Usage::

    RNNLAB_DATA=../shared/data python benchmarks/lm_time_to_quality.py              # 30m
    RNNLAB_DATA=../shared/data python benchmarks/lm_time_to_quality.py --budget 15m \\
        --minutes 3,6,9,12,15
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rnnlab.config.durations import parse_duration
from rnnlab.data import datasets
from rnnlab.training.metrics_log import read_metrics

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "word_language_model"
EPOCH_LINE = re.compile(r"end of epoch\s+(\d+).*valid ppl\s+([0-9.]+)")
TEST_LINE = re.compile(r"End of training.*test ppl\s+([0-9.]+)")


def peer_data(ptb: Path, where: Path) -> Path:
    """A folder with ``train.txt``/``valid.txt``/``test.txt`` linked to PTB's files."""
    where.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        link = where / f"{split}.txt"
        if not link.exists():
            link.symlink_to(ptb / f"ptb.{split}.txt")
    return where


def pinned_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def default_sigint() -> None:
    """In the child: SIGINT back to its default, so that Python turns it into
    KeyboardInterrupt (a program started in the background inherits SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_peer(
    args: argparse.Namespace, out: Path, ptb: Path
) -> tuple[Any, list[tuple[float, str]], threading.Thread]:
    data = peer_data(ptb, out / "peer-data")
    command = [
        "taskset", "-c", str(args.peer_core), sys.executable, "-u", str(args.peer / "main.py"),
        "--data", str(data), "--save", str(out / "peer-model.pt"), "--epochs", "40",
    ]  # fmt: skip
    log = open(out / "peer.log", "w", encoding="utf-8")  # noqa: SIM115 - closed by the reader
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=pinned_env(),
        preexec_fn=default_sigint,
    )  # fmt: skip
    start = time.monotonic()
    events: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            stamp = time.monotonic() - start
            events.append((stamp, line))
            log.write(f"[{stamp:8.1f}s] {line}")
            log.flush()
        log.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, events, reader


def peer_results(events: list[tuple[float, str]]) -> tuple[list[tuple[float, float]], float]:
    """``(seconds, valid ppl)`` of each epoch and the test perplexity (nan if absent)."""
    points, test = [], math.nan
    for stamp, line in events:
        if match := EPOCH_LINE.search(line):
            points.append((stamp, float(match.group(2))))
        elif match := TEST_LINE.search(line):
            test = float(match.group(1))
    return points, test


def rnnlab_results(run: Path) -> tuple[list[tuple[float, float]], float, str]:
    """``(elapsed_seconds, valid ppl)``, test perplexity and the checkpoint it was measured with."""
    records = read_metrics(run / "metrics.jsonl") if (run / "metrics.jsonl").is_file() else []
    points, test, which = [], math.nan, "-"
    for record in records:
        if record.get("kind") != "eval":
            continue
        if record.get("split") == "valid" and "elapsed_seconds" in record:
            points.append((float(record["elapsed_seconds"]), float(record["perplexity"])))
        elif record.get("split") == "test":
            test, which = float(record["perplexity"]), str(record.get("checkpoint", "-"))
    return points, test, which


def at(points: list[tuple[float, float]], seconds: float) -> str:
    """The last value measured at or before ``seconds`` (``value @minute``), else ``-``."""
    seen = [(t, v) for t, v in points if t <= seconds]
    if not seen:
        return "-"
    t, v = seen[-1]
    return f"{v:7.1f} @{t / 60:4.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default="30m", help="wall time of each program (30m)")
    parser.add_argument("--recipe", default="ptb-30m", help="rnnlab recipe or config file")
    parser.add_argument("--minutes", default=None, help="marks, default 5,10,...,budget")
    parser.add_argument("--out", type=Path, default=Path("runs/lm_time_to_quality"))
    parser.add_argument("--peer", type=Path, default=PEER)
    parser.add_argument("--rnnlab-core", type=int, default=0)
    parser.add_argument("--peer-core", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="rnnlab override")
    args = parser.parse_args()

    budget = parse_duration(args.budget)
    marks = (
        [float(m) for m in args.minutes.split(",")]
        if args.minutes
        else [float(m) for m in range(5, int(budget // 60) + 1, 5)]
    )
    ptb = Path(datasets.locate("ptb"))
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    run = out / "rnnlab"
    rnnlab_cmd = [
        "taskset", "-c", str(args.rnnlab_core), sys.executable, "-m", "rnnlab", "train",
        args.recipe, "--budget", args.budget, "--run-dir", str(run), "-q",
        *[part for item in args.set for part in ("--set", item)],
    ]  # fmt: skip
    print(f"load before: {os.getloadavg()}", flush=True)
    with open(out / "rnnlab.log", "w", encoding="utf-8") as rlog:
        ours = subprocess.Popen(rnnlab_cmd, stdout=rlog, stderr=subprocess.STDOUT, env=pinned_env())
        peer, events, reader = start_peer(args, out, ptb)
        started = time.monotonic()
        loads = []
        while time.monotonic() - started < budget:
            time.sleep(min(30.0, max(0.0, budget - (time.monotonic() - started))))
            loads.append(os.getloadavg()[0])
            if peer.poll() is not None:
                break
        if peer.poll() is None:
            peer.send_signal(signal.SIGINT)  # its own early exit: best checkpoint, then test
        peer.wait()
        reader.join(timeout=60)
        ours.wait()
    mine, test_mine, which = rnnlab_results(run)
    theirs, test_theirs = peer_results(events)
    rows = [f"| {m:g} | {at(mine, m * 60)} | {at(theirs, m * 60)} |" for m in marks]
    print(f"\nbudget {args.budget}, one pinned core each, OMP_NUM_THREADS=1")
    print(
        f"load average (1 min) during the run: mean {sum(loads) / max(len(loads), 1):.2f}, "
        f"max {max(loads, default=0.0):.2f} (2 cores)"
    )
    print(f"| minute | rnnlab {args.recipe} valid ppl @min | peer defaults valid ppl @min |")
    print("| --- | --- | --- |")
    print("\n".join(rows))
    print(
        f"test perplexity: rnnlab {test_mine:.1f} ({which}), peer {test_theirs:.1f} "
        "(its best checkpoint, tested after the budget)"
    )
    summary = {
        "budget": args.budget, "recipe": args.recipe, "rnnlab_valid": mine,
        "peer_valid": theirs, "rnnlab_test": test_mine, "peer_test": test_theirs,
        "load_mean": sum(loads) / max(len(loads), 1), "load_max": max(loads, default=0.0),
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0 if ours.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
