"""``rnnlab generate`` through Typer: streaming output, seeds, one-line errors with exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rnnlab import api
from rnnlab import config as cfg
from rnnlab.cli.generate import register
from rnnlab.data.text import Vocabulary

runner = CliRunner()


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    corpus = root / "corpus"
    corpus.mkdir()
    text = "\n".join(["the cat sat on the mat", "a dog ate the bone"] * 30) + "\n"
    for split in ("train", "valid", "test"):
        (corpus / f"{split}.txt").write_text(text, encoding="utf-8")
    config = cfg.from_dict(
        {
            "task": {"name": "language"},
            "data": {"path": str(corpus), "eval_batch_size": 2},
            "model": {"hidden_size": 16, "embedding_size": 8},
            "train": {
                "optimizer": "adam",
                "lr": 0.02,
                "batch_size": 4,
                "seq_len": 5,
                "epochs": 2,
                "device": "cpu",
            },
        }
    )
    run = root / "run"
    api.train(config, run_dir=run, quiet=None)
    return run


def generate(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(make_app(), ["generate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_generates_after_the_prompt_and_repeats_with_a_seed(run_dir: Path) -> None:
    code, out, _ = generate(str(run_dir), "--prompt", "the cat", "--length", "8", "--seed", "3")
    assert code == 0 and out.startswith("the cat ")
    assert len(out.strip()) > len("the cat")  # 8 tokens; <eos> prints as a newline
    again = generate(str(run_dir), "--prompt", "the cat", "--length", "8", "--seed", "3")
    assert again[1] == out
    other = generate(str(run_dir), "--prompt", "the cat", "--length", "30", "--seed", "4")
    assert other[1] != out


def test_unknown_prompt_word_warns(run_dir: Path) -> None:
    code, out, err = generate(str(run_dir), "--prompt", "the zebra", "--length", "3")
    assert code == 0 and out.startswith("the zebra")
    assert "warning: 1 prompt token(s) not in the vocabulary mapped to '<unk>'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--length", "0"], "error: length must lie in [1, 100000], got 0"),
        (["--length", "100001"], "error: length must lie in [1, 100000], got 100001"),
        (["--temperature", "0"], "error: temperature must lie in (0, 100], got 0.0"),
        (["--temperature", "-1"], "error: temperature must lie in (0, 100], got -1.0"),
        (["--top-k", "0"], "error: top_k must be >= 1, got 0"),
        (["--checkpoint", "first"], "error: checkpoint 'first' is not allowed"),
    ],
)
def test_out_of_range_options_are_one_line_errors(
    run_dir: Path, args: list[str], message: str
) -> None:
    code, out, err = generate(str(run_dir), *args)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_vocabulary_mismatch_is_a_one_line_error(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    Vocabulary(["<unk>", "<eos>", "a", "b"], level="word").save(copy / "vocab.json")
    code, _, err = generate(str(copy), "--prompt", "a")
    assert code == 2 and err.startswith("error: vocabulary mismatch:") and err.count("\n") == 1
    assert "has 4 tokens but the model" in err


def test_not_a_run_directory(tmp_path: Path) -> None:
    code, _, err = generate(str(tmp_path))
    assert code == 2 and "is not a run directory" in err
