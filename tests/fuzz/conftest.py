"""Tiny real runs, trained once per session and only read by the fuzz tests (each case works
on a private copy): an adding run, a language run on a generated corpus, a forecasting run on
a generated CSV and two speech runs (digits and CTC) on generated tones. The configs are the
ones the task's own tests build."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.forecasting.helpers import train_run
from tests.language.helpers import base_config, write_corpus
from tests.speech.test_tasks import CTC_DATA
from tests.speech.test_tasks import config as speech_config
from tests.training.helpers import TINY

import rnnlab.api as api
from rnnlab import config as cfg

ADDING = [*TINY, "train.epochs=1"]


@pytest.fixture(scope="session")
def adding_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("fuzz-adding") / "adding"
    api.train("adding", overrides=ADDING, run_dir=run, quiet=None)
    return run


@pytest.fixture(scope="session")
def language_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("fuzz-corpus") / "corpus", repeats=10)


@pytest.fixture(scope="session")
def language_config(language_corpus: Path) -> Path:
    """The language tests' config, as a TOML file whose ``data.path`` cases override."""
    path = language_corpus.parent / "language.toml"
    cfg.save(base_config(language_corpus, "train.num_threads=1"), path)
    return path


@pytest.fixture(scope="session")
def language_run(tmp_path_factory: pytest.TempPathFactory, language_config: Path) -> Path:
    run = tmp_path_factory.mktemp("fuzz-language") / "language"
    api.train(language_config, run_dir=run, quiet=None)
    return run


@pytest.fixture(scope="session")
def forecast_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(tmp_path_factory.mktemp("fuzz-forecast"))


@pytest.fixture(scope="session")
def speech_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz-speech")
    runs = {"digits": root / "digits", "ctc": root / "ctc"}
    api.train(speech_config("speech-digits", epochs=1), run_dir=runs["digits"], quiet=None)
    api.train(speech_config("speech-ctc", CTC_DATA, epochs=1), run_dir=runs["ctc"], quiet=None)
    return runs
