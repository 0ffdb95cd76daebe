"""The n-gram word LM (Kneser-Ney, back-off, ARPA) and the CTC beam search that uses it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rnnlab.errors import DataError
from rnnlab.speech.ctc import ctc_greedy_decode
from rnnlab.speech.lm import UNK, NGramLM, read_lm_text
from rnnlab.speech.lm_beam import LMDecoder, tune_lm_weights
from rnnlab.speech.units import TextUnits

TEXT = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat ran to the dog",
    "the cat sat",
    "a dog ran",
]


def total(lm: NGramLM, context: tuple[str, ...]) -> float:
    return sum(math.exp(lm.log_prob(context, w)) for w in lm.vocabulary)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_distributions_sum_to_one(order: int) -> None:
    lm = NGramLM.train(TEXT, order)
    assert UNK in lm.vocabulary and "</s>" in lm.vocabulary and "<s>" not in lm.vocabulary
    for context in [(), ("<s>",), ("the",), ("the", "cat"), ("sat", "on", "the"), ("zebra",)]:
        assert total(lm, ("<s>", *context)) == pytest.approx(1.0, abs=1e-9)
        assert total(lm, context) == pytest.approx(1.0, abs=1e-9)


def test_kneser_ney_values_by_hand() -> None:
    # bigrams of "<s> a b </s>" and "<s> a c </s>": continuation counts of the unigrams
    lm = NGramLM.train(["a b", "a c"], order=2)
    # unigram level: a(.) = N1+(. w): a<-<s>, b<-a, c<-a, </s><-b,c => a:1 b:1 c:1 </s>:2
    # n1 = 3, n2 = 1 -> D = 3 / 5; total 5; V = {a, b, c, </s>, <unk>}
    d1, tot = 0.6, 5.0
    floor = d1 * 4 / tot / 5
    assert math.exp(lm.log_prob((), "</s>")) == pytest.approx((2 - d1) / tot + floor)
    assert math.exp(lm.log_prob((), UNK)) == pytest.approx(floor)
    # bigram level: counts all 1 except (<s>, a) = 2 -> n1 = 4, n2 = 1 -> D = 4 / 6
    d2 = 4 / 6
    p_b = (1 - d1) / tot + floor
    expected = (1 - d2) / 2 + d2 * 2 / 2 * p_b  # context "a": 2 types, total 2
    assert math.exp(lm.log_prob(("a",), "b")) == pytest.approx(expected)
    # unseen "a a": only the back-off mass
    p_a = (1 - d1) / tot + floor
    assert math.exp(lm.log_prob(("a",), "a")) == pytest.approx(d2 * p_a)


def test_back_off_for_unseen_context_and_unknown_words() -> None:
    lm = NGramLM.train(TEXT, 3)
    # an unseen context backs off to the shorter one (weight 1 when never a context)
    assert lm.log_prob(("zebra", "the"), "cat") == pytest.approx(
        lm.log_prob(("the",), "cat") + lm.backoffs[2].get((UNK, "the"), 0.0)
    )
    assert lm.log_prob(("the",), "zebra") == lm.log_prob(("the",), UNK)
    assert lm.sentence_log_prob(["the", "cat", "sat"]) > lm.sentence_log_prob(["sat", "the", "cat"])


def test_arpa_round_trip(tmp_path: Path) -> None:
    lm = NGramLM.train(TEXT, 3)
    path = tmp_path / "lm.arpa"
    path.write_text(lm.to_arpa())
    back = NGramLM.read_arpa(path)
    assert back.order == 3 and back.vocabulary == lm.vocabulary
    for context in [("<s>",), ("the", "cat"), ("a",), ("zebra",)]:
        for word in lm.vocabulary:
            assert back.log_prob(context, word) == pytest.approx(
                lm.log_prob(context, word), abs=1e-5
            )


def test_bad_arpa_and_lm_text(tmp_path: Path) -> None:
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\nnot-a-number the\n")
    with pytest.raises(DataError, match=r"bad.arpa, line 5"):
        NGramLM.read_arpa(bad)
    (tmp_path / "empty.arpa").write_text("hello\n")
    with pytest.raises(DataError, match=r"no .1-grams"):
        NGramLM.read_arpa(tmp_path / "empty.arpa")
    with pytest.raises(DataError, match=r"missing\.arpa: cannot read"):
        NGramLM.read_arpa(tmp_path / "missing.arpa")
    text = tmp_path / "lm.txt"
    text.write_text("the company does n't know <unk>\nit 's here\nThe cat sat.\n")
    lines = read_lm_text(text, exclude={"the cat sat"})
    assert lines == ["the company doesn't know <unk>", "it's here"]


def spell(units: TextUnits, frames: list[dict[str, float]]) -> torch.Tensor:
    """Log-probs with the given per-frame character probabilities (rest: blank)."""
    lp = torch.full((len(frames), units.num_classes), 1e-4)
    for t, probs in enumerate(frames):
        for char, p in probs.items():
            lp[t, units.tokens.index(char) + 1] = p
        lp[t, 0] = max(1e-4, 1.0 - sum(probs.values()))
    return (lp / lp.sum(dim=1, keepdim=True)).log()


def spell_with_blanks(units: TextUnits, frames: list[dict[str, float]]) -> torch.Tensor:
    """:func:`spell` with a blank frame after each frame (so repeated letters stay apart)."""
    return spell(units, [f for frame in frames for f in (frame, {})])


def cat_lm() -> NGramLM:
    """A trigram LM where "the cat sat" is common and "the dog sat" seen once."""
    return NGramLM.train(["the cat sat"] * 3 + ["a cat sat on the mat", "the dog sat"], 3)


def test_beam_with_lm_beats_greedy_on_an_ambiguous_case() -> None:
    units = TextUnits.characters()
    lm = cat_lm()
    # "the cat sa?": the last letter sounds more like "d" than "t"
    frames = [{c: 0.9} for c in "the cat sa"] + [{"d": 0.5, "t": 0.4}]
    lp = spell_with_blanks(units, frames)
    assert units.decode(ctc_greedy_decode(lp).tokens) == "the cat sad"
    assert LMDecoder(units, lm, alpha=0.0, beta=0.0).decode(lp).text == "the cat sad"
    hyp = LMDecoder(units, lm, alpha=0.8, beta=1.0).decode(lp)
    assert hyp.text == "the cat sat"
    assert [s.token for s in hyp.spans(lp)] == list(hyp.tokens)
    # tuning on this "validation" case prefers an LM weight above zero
    alpha, _ = tune_lm_weights([lp], ["the cat sat"], units, lm, [0.0, 0.8], [0.0, 1.0])
    assert alpha == 0.8


def test_lexicon_spells_only_lm_words() -> None:
    units = TextUnits.characters()
    lm = cat_lm()
    frames = [{c: 0.9} for c in "the cat sa"] + [{"d": 0.5, "t": 0.4}]
    lp = spell_with_blanks(units, frames)
    # no LM weight: the acoustics alone pick "sad"; the lexicon has no such word
    assert LMDecoder(units, lm, 0.0, 0.0).decode(lp).text == "the cat sad"
    assert LMDecoder(units, lm, 0.0, 0.0, lexicon=True).decode(lp).text == "the cat sat"
    # a misspelt word inside the sentence ("dag" for "dog") is corrected too
    frames = [{c: 0.9} for c in "the d"] + [{"a": 0.6, "o": 0.3}] + [{c: 0.9} for c in "g sat"]
    lp = spell_with_blanks(units, frames)
    assert LMDecoder(units, lm, 0.0, 0.0).decode(lp).text == "the dag sat"
    hyp = LMDecoder(units, lm, 0.0, 0.0, lexicon=True).decode(lp)
    assert hyp.text == "the dog sat" and units.decode(hyp.tokens) == "the dog sat"
    # audio that spells "ca", no word: the best hypothesis made of words keeps the word "a"
    lp = spell(units, [{"c": 0.9}, {}, {"a": 0.9}])
    assert LMDecoder(units, lm, 0.5, 1.0).decode(lp).text == "ca"
    assert LMDecoder(units, lm, 0.5, 1.0, lexicon=True).decode(lp).text == "a"


def test_beam_without_lm_weight_matches_greedy_on_peaky_outputs() -> None:
    units = TextUnits.characters()
    lm = NGramLM.train(TEXT, 2)
    frames = [{c: 0.95} if c != "_" else {} for c in "t_h_e_ _d_o_g"]
    lp = spell(units, frames)
    assert LMDecoder(units, lm, 0.0, 0.0).decode(lp).text == units.decode(
        ctc_greedy_decode(lp).tokens
    )


def test_word_pieces_decode_words_with_the_lm() -> None:
    units = TextUnits.train_pieces(TEXT, 70)
    lm = NGramLM.train(TEXT, 2)
    tokens = units.encode("the cat sat")
    lp = torch.full((2 * len(tokens), units.num_classes), -12.0)
    lp[:, 0] = 0.0
    for i, token in enumerate(tokens):
        lp[2 * i, token] = 1.0
    for lexicon in (False, True):
        hyp = LMDecoder(units, lm, 0.5, 1.0, lexicon=lexicon).decode(lp.log_softmax(-1))
        assert hyp.text == "the cat sat" and hyp.tokens == tuple(tokens)
