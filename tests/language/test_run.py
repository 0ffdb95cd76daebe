"""Loading a trained language run (``rnnlab.language.run``): the model, its vocabulary, text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.language.helpers import base_config, write_corpus

from rnnlab import api
from rnnlab.data.text import Vocabulary
from rnnlab.errors import DataError, UserError
from rnnlab.language.model import LanguageModel
from rnnlab.language.run import generate_from_run, load_run, stream_text


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lm")
    config = base_config(write_corpus(root / "corpus"), "train.epochs=12")
    run = root / "run"
    api.train(config, run_dir=run, quiet=None)
    return run


def test_tiny_model_overfits_a_tiny_corpus(trained: Path) -> None:
    result = api.evaluate(trained, split="test")
    # 14 tokens: a uniform guess has perplexity 14; the sentences are nearly deterministic
    assert result["perplexity"] < 3.0


def test_load_run_and_reproducible_generation(trained: Path) -> None:
    run = load_run(trained)
    assert isinstance(run.model, LanguageModel) and not run.model.training
    first = "".join(stream_text(run, "the cat", 12, seed=7))
    again = "".join(stream_text(run, "the cat", 12, seed=7))
    assert first == again and first.startswith(" ")
    greedy = "".join(stream_text(run, "the cat", 4, temperature=0.01, seed=1))
    assert greedy.split() == ["sat", "on", "the", "mat"]
    with pytest.raises(UserError, match="length must lie in"):
        stream_text(run, "the", 0)
    with pytest.raises(UserError, match="temperature must lie in"):
        stream_text(run, "the", 3, temperature=0.0)
    with pytest.raises(UserError, match="top_k must lie in"):
        stream_text(run, "the", 3, top_k=1000)


def test_load_run_rejects_a_vocabulary_that_does_not_fit(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    Vocabulary(["<unk>", "<eos>", "x"], level="word").save(copy / "vocab.json")
    with pytest.raises(DataError, match=r"vocabulary mismatch: .* has 3 tokens but the model"):
        load_run(copy)


def test_generate_from_run_is_load_run_then_stream_text(trained: Path) -> None:
    expected = "".join(stream_text(load_run(trained), "the cat", 10, seed=3))
    assert "".join(generate_from_run(trained, "the cat", 10, seed=3)) == expected
    with pytest.raises(UserError, match="checkpoint 'first' is not allowed"):
        generate_from_run(trained, "the", 3, checkpoint="first")
    with pytest.raises(UserError, match="length must lie in"):
        generate_from_run(trained / "missing", "the", 0)  # options first, then the run


def test_best_falls_back_to_last_and_other_tasks_are_refused(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    (copy / "checkpoints" / "best.pt").unlink()
    assert load_run(copy).checkpoint.name == "last.pt"
    assert load_run(trained, checkpoint="last").checkpoint.name == "last.pt"
    config = (copy / "config.toml").read_text(encoding="utf-8")
    (copy / "config.toml").write_text(config.replace('"language"', '"adding"'), encoding="utf-8")
    with pytest.raises(UserError):
        load_run(copy)
