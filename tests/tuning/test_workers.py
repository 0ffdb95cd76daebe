"""Studies across processes: two workers on one SQLite file, a killed study resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState
from tests.tuning.test_search import LR_SPACE, ROOT, TINY, _study

from rnnlab.tuning import space as space_mod
from rnnlab.tuning.failures import TuningError
from rnnlab.tuning.results import finished
from rnnlab.tuning.search import tune


def test_two_workers_share_one_sqlite_file(tmp_path: Path) -> None:
    result = tune(
        "adding",
        space_mod.parse(LR_SPACE),
        trials=4,
        overrides=TINY,
        study_dir=tmp_path,
        workers=2,
        sampler="random",
        pruner="none",
        plots=False,
    )
    trials = _study(tmp_path, "adding").trials
    assert result.counts == {"complete": 4} and len(trials) == 4
    assert len({t.number for t in trials}) == 4
    assert len({t.user_attrs["run_dir"] for t in trials}) == 4
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both processes ran trials
    assert len({t.params["train.lr"] for t in trials}) == 4


KILLED = """
import sys, time
import rnnlab.tuning.trials as trials
from rnnlab.tuning import space, tune
real_train, calls = trials.api.train, []
def train(*args, **kwargs):
    # The third trial hangs once it has drawn its parameters, so the test kills a running
    # trial however fast or slow this machine is.
    calls.append(1)
    if len(calls) > 2:
        time.sleep(600)
    return real_train(*args, **kwargs)
trials.api.train = train
tune("adding", space.parse({"train": {"lr": {"log_uniform": [1e-3, 3e-2]}}}), trials=6,
     overrides=sys.argv[2:], study_dir=sys.argv[1], pruner="none", plots=False,
     heartbeat_interval=1)
"""


def test_killed_study_resumes_with_finished_trials_kept(tmp_path: Path) -> None:
    overrides = [*TINY, "data.train_samples=256", "train.epochs=3"]  # about a second a trial
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path), *overrides], env=env)
    deadline = time.monotonic() + 180
    killed_running = False
    try:
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            if not (tmp_path / "study.db").exists():
                continue
            try:
                trials = _study(tmp_path, "adding").trials
            except (KeyError, optuna.exceptions.StorageInternalError, TuningError):
                continue  # the study is being created
            states = [t.state for t in trials]
            # Killed once the hanging third trial runs with its parameters drawn.
            if (
                states.count(TrialState.COMPLETE) >= 2
                and states[-1] == TrialState.RUNNING
                and trials[-1].params
            ):
                process.send_signal(signal.SIGKILL)
                killed_running = True
                break
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert killed_running, "the study did not reach its hanging third trial"
    before = {t.number: t.value for t in _study(tmp_path, "adding").trials if t.value is not None}
    stale = [t.number for t in _study(tmp_path, "adding").trials if t.state == TrialState.RUNNING]
    assert len(stale) == 1
    time.sleep(2.5)  # past the grace period (2 heartbeats) of the killed trial
    tune(
        "adding",
        space_mod.parse(LR_SPACE),
        trials=6,
        overrides=overrides,
        study_dir=tmp_path,
        pruner="none",
        plots=False,
        heartbeat_interval=1,
    )
    study = _study(tmp_path, "adding")
    after = {t.number: t.value for t in study.trials}
    assert all(after[n] == v for n, v in before.items())  # finished trials kept as they were
    assert study.trials[stale[0]].state == TrialState.FAIL  # the killed trial, marked
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == stale[0]]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == study.trials[stale[0]].params  # retried with its parameters
    assert finished(study) == 6
