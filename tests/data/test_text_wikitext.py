"""WikiText-2/103: the loader on generated files in the release's layout (no data shipped,
no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnlab import config as cfg
from rnnlab.data.text import CorpusError, load_corpus
from rnnlab.data.text.wikitext import FILES, locate_wikitext
from rnnlab.errors import DataError
from rnnlab.language.task import LanguageTask

# The release's form: a blank line and a heading line open each article, paragraphs are
# lines of space-separated tokens, rare words are <unk>, separators split off as @-@ / @,@.
ARTICLE = (
    " \n"
    " = Valkyria Chronicles = \n"
    " \n"
    " The game began development in 2010 , carrying over a large portion of the work "
    "done on <unk> . It is a third @-@ person game with 1 @,@ 000 units . \n"
    " \n"
    " = = Gameplay = = \n"
    " \n"
    " The player controls a squad of soldiers . \n"
)


def write_wikitext(folder: Path, articles: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (folder / name).write_text(ARTICLE * articles, encoding="utf-8")
    return folder


def test_the_layout_loads_at_the_word_level_with_its_own_tokens(tmp_path: Path) -> None:
    folder = write_wikitext(tmp_path / "wikitext-2")
    corpus = load_corpus(folder, "word")
    tokens = corpus.vocab.decode(corpus.train.tolist())
    lines = ARTICLE.split("\n")[:-1]
    assert len(tokens) == 3 * sum(len(line.split()) + 1 for line in lines)  # <eos> per line
    assert tokens[:6] == ["<eos>", "=", "Valkyria", "Chronicles", "=", "<eos>"]  # blank line
    assert "@-@" in corpus.vocab.tokens and "@,@" in corpus.vocab.tokens
    # The corpus's own <unk> is the vocabulary's unknown token, not a word of its own.
    assert corpus.vocab.tokens.count("<unk>") == 1
    assert corpus.vocab.encode(["<unk>"]).tolist() == [corpus.vocab.unk_index]
    assert corpus.valid.numel() == corpus.test.numel() == corpus.train.numel()


def test_named_wikitext_is_found_under_the_data_root_also_nested(tmp_path: Path) -> None:
    write_wikitext(tmp_path / "root" / "wikitext-103" / "wikitext-103")  # as the zip nests it
    found = locate_wikitext("wikitext-103", tmp_path / "root")
    assert found == tmp_path / "root" / "wikitext-103" / "wikitext-103"
    with pytest.raises(CorpusError, match=r"not found: no folder with wiki\.train\.tokens"):
        locate_wikitext("wikitext-2", tmp_path / "root")
    with pytest.raises(CorpusError, match="unknown WikiText"):
        locate_wikitext("wikitext-7", tmp_path / "root")


def _config(**data: object) -> cfg.ExperimentConfig:
    return cfg.from_dict(
        {
            "task": {"name": "language"},
            "data": {"eval_batch_size": 2, "test_batch_size": 2, **data},
            "model": {"cell": "lstm", "hidden_size": 8, "embedding_size": 8},
            "train": {"batch_size": 2, "seq_len": 5, "epochs": 1, "device": "cpu"},
        }
    )


def test_the_language_task_reads_data_corpus_wikitext(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_wikitext(tmp_path / "data" / "wikitext-2")
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "data"))
    task = LanguageTask(_config(corpus="wikitext-2"))
    assert task.level == "word"
    data = task.build_data()
    assert data.spec.vocab_size == len(task.vocab or [])
    assert len(data.train) > 0
    missing = LanguageTask(_config(corpus="wikitext-103"))
    with pytest.raises(DataError, match="WikiText-103"):
        missing.build_data()
