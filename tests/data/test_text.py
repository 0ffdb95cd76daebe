"""Text corpora: tokens, vocabulary, corpus files, streams and BPTT windows."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from rnnlab.data.text import (
    BPTTBatches,
    CorpusError,
    Vocabulary,
    batchify,
    detokenize,
    load_corpus,
    load_named_corpus,
    tokenize,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


# -------------------------------------------------------------------------------- tokens


def test_word_tokens_append_eos_per_line() -> None:
    assert tokenize(" the cat \n sat <unk> \n", "word") == [
        "the",
        "cat",
        "<eos>",
        "sat",
        "<unk>",
        "<eos>",
    ]
    assert tokenize("a\n\nb", "word") == ["a", "<eos>", "<eos>", "b", "<eos>"]


def test_char_tokens_are_unicode_characters() -> None:
    text = "Ünï\ncode ✓\n"
    assert tokenize(text, "char") == list("Ünï\ncode ✓\n")
    assert detokenize(tokenize(text, "char"), "char") == text


def test_char_spaced_is_ptb_char_format() -> None:
    # Mikolov's rule: each symbol and the newline followed by one space; "_" between words.
    text = "a _ c a t \n < u n k > _ b \n "
    tokens = tokenize(text, "char-spaced")
    assert tokens == ["a", "_", "c", "a", "t", "<eos>", "<", "u", "n", "k", ">", "_", "b", "<eos>"]
    assert detokenize(tokens, "char-spaced") == "a cat\n<unk> b\n"


def test_word_detokenize() -> None:
    assert detokenize(["the", "cat", "<eos>", "sat"], "word") == "the cat\nsat"


def test_unknown_level() -> None:
    with pytest.raises(ValueError, match="level must be one of"):
        tokenize("x", "byte")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- vocabulary


def test_vocabulary_order_min_freq_max_size() -> None:
    tokens = ["b", "a", "c", "a", "b", "a", "d", "<eos>"]
    v = Vocabulary.build(tokens, level="word")
    assert v.tokens == ["<unk>", "<eos>", "a", "b", "c", "d"]  # count desc, then token
    v2 = Vocabulary.build(tokens, level="word", min_freq=2)
    assert v2.tokens == ["<unk>", "<eos>", "a", "b"]
    v3 = Vocabulary.build(tokens, level="word", max_size=3)
    assert v3.tokens == ["<unk>", "<eos>", "a"]
    assert v3.encode(["a", "b", "zzz"]).tolist() == [2, 0, 0]
    assert v3.decode([2, 1]) == ["a", "<eos>"]
    char = Vocabulary.build("abca", level="char")
    assert char.tokens == ["<unk>", "a", "b", "c"] and char.eos is None


def test_vocabulary_bad_options() -> None:
    with pytest.raises(ValueError, match="min_freq must be an integer >= 1, got 0"):
        Vocabulary.build(["a"], level="word", min_freq=0)
    with pytest.raises(ValueError, match="max_size must be an integer >= 2"):
        Vocabulary.build(["a"], level="word", max_size=1)
    with pytest.raises(ValueError, match="lacks its unk token"):
        Vocabulary(["a", "<eos>"], level="word")
    with pytest.raises(ValueError, match="repeat"):
        Vocabulary(["<unk>", "a", "a"], level="char", eos=None)
    with pytest.raises(ValueError, match=r"\[0, 2\), got \[5\]"):
        Vocabulary(["<unk>", "a"], level="char", eos=None).decode([5])


def test_vocabulary_round_trip(tmp_path: Path) -> None:
    v = Vocabulary.build(list("héllo wörld\n"), level="char")
    path = tmp_path / "vocab.json"
    v.save(path)
    assert Vocabulary.load(path) == v
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == "rnnlab-vocabulary"
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temporary file left


def test_vocabulary_load_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json: not JSON"):
        Vocabulary.load(bad)
    bad.write_text(json.dumps({"tokens": ["a"]}), encoding="utf-8")
    with pytest.raises(ValueError, match="not an rnnlab vocabulary"):
        Vocabulary.load(bad)


# -------------------------------------------------------------------------------- corpus


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_directory_corpus_vocab_from_train(tmp_path: Path) -> None:
    _write(tmp_path / "toy.train.txt", " a b a \n b c \n")
    _write(tmp_path / "toy.valid.txt", " a z \n")
    _write(tmp_path / "toy.test.txt", " c \n")
    corpus = load_corpus(tmp_path, "word")
    v = corpus.vocab
    assert v.tokens == ["<unk>", "<eos>", "a", "b", "c"]
    assert v.decode(corpus.train) == ["a", "b", "a", "<eos>", "b", "c", "<eos>"]
    assert v.decode(corpus.valid) == ["a", "<unk>", "<eos>"]  # z is not in train
    assert corpus.test.tolist() == [4, 1]


def test_raw_file_split_by_fractions(tmp_path: Path) -> None:
    path = _write(tmp_path / "input.txt", "abcdefghij" * 10)  # 100 characters
    corpus = load_corpus(path, "char", split=(0.8, 0.1, 0.1))
    assert (corpus.train.numel(), corpus.valid.numel(), corpus.test.numel()) == (80, 10, 10)
    assert corpus.vocab.decode(corpus.valid) == list("abcdefghij")
    no_test = load_corpus(path, "char", split=(0.9, 0.1, 0.0))
    assert (no_test.valid.numel(), no_test.test.numel()) == (10, 0)
    with pytest.raises(ValueError, match="sum to 1"):
        load_corpus(path, "char", split=(0.8, 0.1, 0.2))


def test_non_utf8_names_file_and_offset(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin1.txt", b"caf" + b"\xe9 noir\n")
    with pytest.raises(CorpusError, match=r"latin1\.txt is not UTF-8: byte 0xe9 at offset 3"):
        load_corpus(path, "char")


def test_empty_corpus_and_split_errors(tmp_path: Path) -> None:
    empty = _write(tmp_path / "empty.txt", "")
    with pytest.raises(CorpusError, match=r"empty\.txt holds no tokens"):
        load_corpus(empty, "char")
    tiny = _write(tmp_path / "tiny.txt", "abc")
    with pytest.raises(CorpusError, match=r"tiny\.txt: split 'valid' is empty \(3 tokens"):
        load_corpus(tiny, "char", split=(0.9, 0.05, 0.05))
    d = tmp_path / "d"
    _write(d / "train.txt", "a\n")
    _write(d / "valid.txt", "\n \n")  # blank lines only
    _write(d / "test.txt", "b\n")
    with pytest.raises(CorpusError, match=r"valid\.txt holds no tokens"):
        load_corpus(d, "word")


def test_split_files_missing_or_ambiguous(tmp_path: Path) -> None:
    _write(tmp_path / "train.txt", "a\n")
    _write(tmp_path / "test.txt", "a\n")
    with pytest.raises(CorpusError, match=r"split 'valid'.*found none"):
        load_corpus(tmp_path, "word")
    _write(tmp_path / "valid.txt", "a\n")
    _write(tmp_path / "old.train.txt", "a\n")
    with pytest.raises(CorpusError, match=r"split 'train'.*old\.train\.txt.*train\.txt"):
        load_corpus(tmp_path, "word")


# ------------------------------------------------------------------------------ batching


def test_batchify_hand_worked() -> None:
    streams = batchify(torch.arange(26), 4)  # a..z as 0..25; y, z dropped
    assert streams.tolist() == [
        [0, 6, 12, 18],
        [1, 7, 13, 19],
        [2, 8, 14, 20],
        [3, 9, 15, 21],
        [4, 10, 16, 22],
        [5, 11, 17, 23],
    ]
    with pytest.raises(ValueError, match="too few for batch_size 4"):
        batchify(torch.arange(7), 4)


def test_fixed_windows_hand_worked() -> None:
    batches = BPTTBatches(torch.arange(26), batch_size=4, bptt=2)
    windows = list(batches)
    assert batches.schedule() == [(0, 2), (2, 2), (4, 1)]
    assert len(batches) == 3
    assert windows[0].inputs.tolist() == [[0, 6, 12, 18], [1, 7, 13, 19]]
    assert windows[0].targets.tolist() == [[1, 7, 13, 19], [2, 8, 14, 20]]
    assert windows[2].inputs.tolist() == [[4, 10, 16, 22]]
    assert windows[2].targets.tolist() == [[5, 11, 17, 23]]
    total = sum(w.targets.numel() for w in windows)
    assert total == batches.num_tokens == 20
    first = BPTTBatches(torch.arange(26), 4, 2, batch_first=True).windows().__next__()
    assert first.inputs.tolist() == [[0, 1], [6, 7], [12, 13], [18, 19]]


def test_varied_windows_deterministic_and_resumable() -> None:
    data = torch.arange(40_001)
    a = BPTTBatches(data, batch_size=1, bptt=70, vary=True, seed=3)
    b = BPTTBatches(data, batch_size=1, bptt=70, vary=True, seed=3)
    plan = a.schedule(epoch=2)
    assert plan == b.schedule(epoch=2)
    assert plan != a.schedule(epoch=3)
    assert plan != BPTTBatches(data, 1, 70, vary=True, seed=4).schedule(epoch=2)
    assert sum(length for _, length in plan) == 40_000
    # Starts follow the lengths: contiguous, no gap or overlap.
    assert all(s2 == s1 + n1 for (s1, n1), (s2, _) in itertools.pairwise(plan))
    lengths = [n for _, n in plan[:-1]]
    assert min(lengths) >= 5 and max(lengths) <= 70 + 20
    mean = sum(lengths) / len(lengths)
    assert abs(mean - (0.95 * 70 + 0.05 * 35)) < 1.5  # E[L] = 68.25, std error ~ 0.25
    half = sum(n < 52 for n in lengths) / len(lengths)  # bptt/2 draws sit near 35
    assert 0.02 < half < 0.09
    # Resuming at window k of epoch 2 gives exactly the tail of that epoch.
    a.set_epoch(2)
    full = list(a)
    resumed = list(b.windows(epoch=2, start_index=17))
    assert len(resumed) == len(full) - 17
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(full[17:], resumed, strict=True))


def test_batches_bad_options() -> None:
    with pytest.raises(ValueError, match="bptt must be an integer >= 1, got 0"):
        BPTTBatches(torch.arange(10), 2, 0)
    with pytest.raises(ValueError, match="start_index must lie in"):
        list(BPTTBatches(torch.arange(10), 2, 2).windows(start_index=9))
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        BPTTBatches(torch.arange(10), 2, 2).set_epoch(-1)


# ----------------------------------------------------------------------------- real data


@pytest.mark.skipif(not (SHARED / "ptb").is_dir(), reason="shared/data/ptb absent")
def test_real_ptb_counts() -> None:
    corpus = load_named_corpus("ptb", root=SHARED)
    assert len(corpus.vocab) == 10_000
    assert (corpus.train.numel(), corpus.valid.numel(), corpus.test.numel()) == (
        929_589,
        73_760,
        82_430,
    )
    assert int((corpus.valid == corpus.vocab.unk_index).sum()) > 0  # PTB's own <unk>


@pytest.mark.skipif(not (SHARED / "ptb-char").is_dir(), reason="shared/data/ptb-char absent")
def test_real_ptb_char_counts() -> None:
    corpus = load_named_corpus("ptb-char", root=SHARED)
    # 4,975,414 symbols + one <eos> per line (42,068); 49 symbols + <eos> + <unk>.
    assert corpus.train.numel() == 4_975_414 + 42_068
    assert corpus.valid.numel() == 389_672 + 3_370
    assert len(corpus.vocab) == 51
