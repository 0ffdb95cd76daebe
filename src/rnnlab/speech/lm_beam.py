r"""CTC prefix beam search with an n-gram word language model, and tuning its weights.

The search is :func:`rnnlab.speech.ctc.ctc_beam_search`'s (each prefix ``y`` keeps the
acoustic log-probabilities of its paths ending in blank and in its last unit), with a word
LM added at word boundaries (Hannun et al. 2014)::

    score(y) = log P_ctc(y | x)  +  alpha log P_lm(words(y))  +  beta |words(y)|

A word is scored when it is complete: for characters when a space follows it, for word
pieces when the next piece starts a word, and the last word (then ``</s>``) at the end of
the utterance. ``alpha`` weighs the LM against the acoustic model; ``beta``, a bonus per
word, offsets the LM's bias towards fewer words. Both are chosen on a validation split
(:func:`tune_lm_weights`), never on the test split. To keep it fast, a frame extends prefixes
only with the units within ``prune`` nats of its best unit.

**Lexicon** (``lexicon=True``): every word must be one of the LM's words. A prefix whose
partial last word begins no LM word is dropped at once, and a word completed outside the
vocabulary too, so the beam spends its width on real spellings (the lexicon-constrained
search of Collobert et al.'s wav2letter decoder). Without it a misspelling is scored as
``<unk>``, which an LM trained on text with unknown words (Penn Treebank: 4.8% ``<unk>``)
rates as likely as a common word, so the LM cannot correct spelling at all. Use
``lexicon=False`` for open-vocabulary transcripts (names, new words).

Example:
    >>> import torch
    >>> from rnnlab.speech.lm import NGramLM
    >>> from rnnlab.speech.units import TextUnits
    >>> units = TextUnits.characters()
    >>> lm = NGramLM.train(["a b"], order=2)
    >>> lp = torch.full((3, units.num_classes), -20.0)
    >>> lp[:, 0] = 0.0; lp[0, units.encode("a")[0]] = -0.1
    >>> LMDecoder(units, lm, alpha=0.5, beta=1.0).decode(lp.log_softmax(-1)).text
    'a'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnlab.speech.ctc import TokenSpan, ctc_align
from rnnlab.speech.lm import BOS, EOS, UNK, NGramLM
from rnnlab.speech.metrics import character_error_rate, word_error_rate
from rnnlab.speech.units import TextUnits

__all__ = ["LMDecoder", "LMHypothesis", "tune_lm_weights"]

NEG_INF = -math.inf


def _logadd(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


@dataclass(frozen=True)
class LMHypothesis:
    """The best transcript of a beam search with a language model.

    Attributes:
        text: the transcript.
        tokens: its unit classes.
        acoustic: ``log P_ctc(tokens | x)`` (summed over its paths kept in the beam).
        score: the acoustic score plus the weighted LM score and word bonus.
    """

    text: str
    tokens: tuple[int, ...]
    acoustic: float
    score: float

    def spans(self, log_probs: Tensor | np.ndarray) -> list[TokenSpan]:
        """Each unit's frames on the best path (Viterbi alignment)."""
        return ctc_align(log_probs, self.tokens) if self.tokens else []


class LMDecoder:
    """Prefix beam search over CTC log-probabilities with an n-gram word LM.

    Args:
        units: the run's units (blank = class 0).
        lm: the word language model.
        alpha: LM weight; beta: bonus per word (natural-log units).
        beam_width: prefixes kept after each frame.
        prune: units more than this many nats below a frame's best are not tried.
        lexicon: only spell the LM's words (see the module doc).
    """

    def __init__(
        self,
        units: TextUnits,
        lm: NGramLM,
        alpha: float = 0.5,
        beta: float = 1.0,
        beam_width: int = 16,
        prune: float = 10.0,
        lexicon: bool = False,
    ) -> None:
        if beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {beam_width}")
        self.units = units
        self.lm = lm
        self.alpha = alpha
        self.beta = beta
        self.beam_width = beam_width
        self.prune = prune
        self._space = units.tokens.index(" ") + 1 if " " in units.tokens else -1
        self.lexicon = lexicon
        self._words: frozenset[str] = frozenset()
        self._starts: frozenset[str] = frozenset()
        if lexicon:
            self._words = frozenset(w for w in lm.vocabulary if w not in (EOS, UNK))
            self._starts = frozenset(w[:k] for w in self._words for k in range(1, len(w) + 1))

    def _word_score(self, history: tuple[str, ...], word: str) -> float:
        return self.alpha * self.lm.log_prob((BOS, *history), word) + self.beta

    def decode(self, log_probs: Tensor | np.ndarray) -> LMHypothesis:
        """The best hypothesis for one utterance's ``(T, C)`` log-probabilities."""
        if isinstance(log_probs, Tensor):
            lp = log_probs.detach().to("cpu", torch.float64).numpy()
        else:
            lp = np.asarray(log_probs, dtype=np.float64)
        # prefix -> [log p_b, log p_nb]; prefix -> (LM score so far, completed words), or
        # None for a prefix the lexicon rules out
        beams: dict[tuple[int, ...], list[float]] = {(): [0.0, NEG_INF]}
        lm_of: dict[tuple[int, ...], tuple[float, tuple[str, ...]] | None] = {(): (0.0, ())}
        for frame in lp:
            best = float(frame.max())
            candidates = [int(c) for c in np.flatnonzero(frame >= best - self.prune) if c != 0]
            nxt: dict[tuple[int, ...], list[float]] = {}
            for prefix, (p_b, p_nb) in beams.items():
                total = _logadd(p_b, p_nb)
                here = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
                here[0] = _logadd(here[0], total + float(frame[0]))
                last = prefix[-1] if prefix else None
                for c in candidates:
                    p_c = float(frame[c])
                    if c == last:
                        here[1] = _logadd(here[1], p_nb + p_c)
                        if c == self._space:
                            continue  # a doubled space spells nothing new
                        p_new = p_b + p_c
                    else:
                        if c == self._space and (last is None or last == self._space):
                            continue  # a leading or doubled space spells nothing new
                        p_new = total + p_c
                    extended = (*prefix, c)
                    if extended not in lm_of:
                        lm_of[extended] = self._extend(lm_of[prefix], prefix, c, extended)
                    if lm_of[extended] is None:
                        continue
                    cell = nxt.setdefault(extended, [NEG_INF, NEG_INF])
                    cell[1] = _logadd(cell[1], p_new)
            ranked = sorted(nxt.items(), key=lambda kv: -(_logadd(*kv[1]) + _lm(lm_of, kv[0])))
            beams = dict(ranked[: self.beam_width])
        finals = [self._final(prefix, cell, lm_of) for prefix, cell in beams.items()]
        complete = [h for h in finals if h.score > NEG_INF]
        # every prefix kept ends inside a word (the audio stopped mid-word): keep the best one
        return max(complete or finals, key=lambda h: h.score if complete else h.acoustic)

    def _extend(
        self,
        state: tuple[float, tuple[str, ...]] | None,
        prefix: tuple[int, ...],
        c: int,
        extended: tuple[int, ...],
    ) -> tuple[float, tuple[str, ...]] | None:
        """The LM state of ``prefix + (c,)``: the word ``c`` completes scored; ``None``
        when the lexicon rules the extension out."""
        assert state is not None  # only live prefixes are extended
        score, words = state
        if self.units.ends_word_before(prefix, c):
            word = self.units.last_word(prefix)
            if self.lexicon and word not in self._words:
                return None
            score += self._word_score(words, word)
            words = (*words, word)
        if self.lexicon and c != self._space:
            partial = self.units.last_word(extended)
            if partial and partial not in self._starts:
                return None
        return score, words

    def _final(
        self,
        prefix: tuple[int, ...],
        cell: list[float],
        lm_of: dict[tuple[int, ...], tuple[float, tuple[str, ...]] | None],
    ) -> LMHypothesis:
        score, words = lm_of[prefix] or (0.0, ())
        if prefix and prefix[-1] != self._space:
            word = self.units.last_word(prefix)
            if self.lexicon and word not in self._words:
                score = NEG_INF
            score += self._word_score(words, word)
            words = (*words, word)
        score += self.alpha * self.lm.log_prob((BOS, *words), EOS)
        acoustic = _logadd(*cell)
        return LMHypothesis(" ".join(words), prefix, acoustic, acoustic + score)


def _lm(
    lm_of: dict[tuple[int, ...], tuple[float, tuple[str, ...]] | None], key: tuple[int, ...]
) -> float:
    state = lm_of[key]
    return NEG_INF if state is None else state[0]


def tune_lm_weights(
    outputs: Sequence[Tensor],
    references: Sequence[str],
    units: TextUnits,
    lm: NGramLM,
    alphas: Sequence[float],
    betas: Sequence[float],
    *,
    beam_width: int = 16,
    prune: float = 10.0,
    lexicon: bool = False,
) -> tuple[float, float]:
    """The ``(alpha, beta)`` of the grid with the lowest WER (then CER) on a validation split.

    Args:
        outputs: ``(T_i, C)`` log-probabilities of the validation utterances.
        references: their transcripts.

    Returns:
        The best pair, the first in grid order among equals.
    """
    if not alphas or not betas:
        raise ValueError("alphas and betas need at least one value each")
    best: tuple[float, float, float, float] | None = None
    for alpha in alphas:
        for beta in betas:
            decoder = LMDecoder(units, lm, alpha, beta, beam_width, prune, lexicon)
            hyps = [decoder.decode(o).text for o in outputs]
            key = (word_error_rate(references, hyps), character_error_rate(references, hyps))
            if best is None or key < best[:2]:
                best = (*key, alpha, beta)
    assert best is not None
    return best[2], best[3]
