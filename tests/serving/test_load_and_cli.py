"""``rnnlab.load`` for runs without a predictor, the app's own limits (queue, unexpected
failures), and ``rnnlab serve`` as a process: it prints where it listens, answers, and stops
on Ctrl-C; bad input is one line and exit code 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.language.helpers import base_config, write_corpus
from tests.serving.helpers import error_of, served

import rnnlab
from rnnlab import api
from rnnlab import config as cfg
from rnnlab.errors import RunDirError
from rnnlab.serving import LanguagePredictor
from rnnlab.serving.app import create_app


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-cli")
    run = root / "run"
    api.train(base_config(write_corpus(root / "corpus"), "train.epochs=1"), run_dir=run, quiet=None)
    return run


def test_a_task_without_a_predictor_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "adding"
    run.mkdir()
    (run / "config.toml").write_text(cfg.load("adding").to_toml())
    with pytest.raises(RunDirError, match=r"task 'adding', which has no predictor \(served tasks"):
        rnnlab.load(run)
    with pytest.raises(RunDirError, match="not a run directory"):
        rnnlab.load(tmp_path / "missing")


class Stuck(LanguagePredictor):
    """A predictor whose calls wait for a signal (to fill the queue) or fail (a bug)."""

    def __init__(self, real: LanguagePredictor) -> None:
        super().__init__(real.run, real.run_dir)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail = False

    def generate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self.fail:
            raise RuntimeError("secret internal detail")
        self.entered.set()
        self.release.wait(30)
        return super().generate(*args, **kwargs)


def test_a_full_queue_is_503_and_a_bug_is_500_without_its_text(run_dir: Path) -> None:
    predictor = Stuck(rnnlab.load(run_dir))  # type: ignore[arg-type]
    with served(predictor, max_queue=1) as client:
        waiting = threading.Thread(
            target=client.post, args=("/generate",), kwargs={"json": {"length": 2}}
        )
        waiting.start()
        assert predictor.entered.wait(30)
        assert "busy" in error_of(client.post("/generate", json={"length": 2}), 503, None)
        predictor.release.set()
        waiting.join(30)
        assert client.post("/generate", json={"length": 2}).status_code == 200
        predictor.fail = True
        message = error_of(client.post("/generate", json={"length": 2}), 500, None)
        assert "RuntimeError" in message and "secret" not in message


def test_create_app_checks_its_limits(run_dir: Path) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        create_app(rnnlab.load(run_dir), max_body_bytes=0)


def rnnlab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rnnlab", *args]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_rnnlab_serve_listens_answers_and_stops_on_ctrl_c(run_dir: Path) -> None:
    process = subprocess.Popen(
        rnnlab_command("serve", str(run_dir), "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"serving {run_dir} on http://127.0.0.1:"), line
        url = line.split(" on ")[1].split()[0]
        health = httpx.get(f"{url}/health", timeout=60).json()
        assert health["task"] == "language" and health["checkpoint"] == "best.pt"
        answer = httpx.post(f"{url}/generate", json={"prompt": "the", "length": 3, "seed": 2})
        assert answer.json()["text"] == "".join(rnnlab.generate(run_dir, "the", 3, seed=2))
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.strip() == "stopped (SIGINT)"
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--port", "70000"], "--port must lie in [0, 65535]"),
        (["--max-body-mb", "0"], "--max-body-mb must be a positive number"),
        (["--checkpoint", "first"], "checkpoint 'first' is not allowed"),
        (["--host", "no.such.host.invalid"], "cannot listen on no.such.host.invalid"),
    ],
)
def test_rnnlab_serve_bad_input_is_one_line_and_exit_2(
    run_dir: Path, args: list[str], words: str
) -> None:
    done = subprocess.run(
        rnnlab_command("serve", str(run_dir), *args),
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines


def test_rnnlab_serve_on_a_busy_port_is_one_line(run_dir: Path) -> None:
    from rnnlab.serving.server import bind

    taken = bind("127.0.0.1", 0)
    try:
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            rnnlab_command("serve", str(run_dir), "--port", port),
            capture_output=True,
            text=True,
            env=ENV,
            timeout=120,
        )
    finally:
        taken.close()
    assert done.returncode == 2 and "cannot listen on 127.0.0.1:" in done.stderr, done.stderr
