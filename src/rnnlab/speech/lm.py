r"""An n-gram word language model: interpolated Kneser-Ney training, ARPA reading and writing.

:meth:`NGramLM.train` estimates interpolated Kneser-Ney (Chen & Goodman 1998, one discount
per order) from sentences, each read as ``<s> w_1 ... w_n </s>``. For the highest order the
counts ``a(h w)`` are the raw counts; for a lower order the *continuation* counts
``N1+(. h w)`` (distinct words seen before ``h w``; raw counts for n-grams starting at
``<s>``, which have nothing before them)::

    P(w | h) = max(a(h w) - D, 0) / a(h .)  +  gamma(h) P(w | h')      h' = h without its
    gamma(h) = D N1+(h .) / a(h .)                                       first word
    P(w)     = max(a(w) - D, 0) / a(.)  +  D N1+(.) / a(.) / |V|        (uniform at the bottom)
    D        = n1 / (n1 + 2 n2)   (n_k: n-grams of that order with count k)

``V`` is the words, ``</s>`` and ``<unk>`` (never ``<s>``), so every distribution over ``V``
sums to 1. The model is kept in back-off (ARPA) form: for an n-gram seen in training its
interpolated ``log P(w | h)``, and for each context ``h`` its back-off weight ``gamma(h)``;
an unseen ``h w`` costs ``log gamma(h) + log P(w | h')``. That is exactly the interpolated
model, and the same code scores an ARPA file of any other toolkit
(:meth:`NGramLM.read_arpa`). Scores are natural logs (ARPA files hold log10).

Example:
    >>> lm = NGramLM.train(["the cat sat", "the dog sat", "a cat ran"], order=2)
    >>> round(sum(math.exp(lm.log_prob(("the",), w)) for w in lm.vocabulary), 6)
    1.0
    >>> lm.log_prob(("the",), "cat") > lm.log_prob(("the",), "ran")
    True
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from rnnlab.errors import DataError
from rnnlab.speech.units import normalize_text

__all__ = ["BOS", "EOS", "UNK", "NGramLM", "read_lm_text"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LOG10 = math.log(10.0)


class NGramLM:
    """A back-off n-gram model (see the module doc).

    Args:
        order: the n of the n-grams.
        probs: ``probs[n]`` maps n-gram tuples to ``log P(w | h)`` (natural log).
        backoffs: ``backoffs[n]`` maps n-gram contexts to their log back-off weight.
    """

    def __init__(
        self,
        order: int,
        probs: dict[int, dict[tuple[str, ...], float]],
        backoffs: dict[int, dict[tuple[str, ...], float]],
    ) -> None:
        if order < 1 or (UNK,) not in probs.get(1, {}):
            raise ValueError("an n-gram model needs order >= 1 and a unigram for <unk>")
        self.order = order
        self.probs = probs
        self.backoffs = backoffs
        self.vocabulary = tuple(sorted(w for (w,) in probs[1] if w != BOS))
        self._known = frozenset(self.vocabulary)
        self._cache: dict[tuple[tuple[str, ...], str], float] = {}

    # ------------------------------------------------------------ scoring

    def log_prob(self, context: Sequence[str], word: str) -> float:
        """``log P(word | context)``; unknown words are ``<unk>``, ``context`` may start with
        ``<s>`` and is cut to the last ``order - 1`` words."""
        history = tuple(w if w in self._known or w == BOS else UNK for w in context)
        history = history[len(history) - self.order + 1 :] if self.order > 1 else ()
        target = word if word in self._known else UNK
        key = (history, target)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        total = 0.0
        h = history
        while True:
            entry = self.probs.get(len(h) + 1, {}).get((*h, target))
            if entry is not None:
                total += entry
                break
            total += self.backoffs.get(len(h), {}).get(h, 0.0) if h else 0.0
            if not h:  # only possible for a word missing from the unigrams
                total += self.probs[1][(UNK,)]
                break
            h = h[1:]
        if len(self._cache) < 2_000_000:
            self._cache[key] = total
        return total

    def sentence_log_prob(self, words: Sequence[str]) -> float:
        """``log P(w_1 ... w_n </s> | <s>)``."""
        context: list[str] = [BOS]
        total = 0.0
        for word in [*words, EOS]:
            total += self.log_prob(context, word)
            context.append(word)
        return total

    # ------------------------------------------------------------ training

    @classmethod
    def train(cls, sentences: Iterable[str], order: int = 3) -> NGramLM:
        """Interpolated Kneser-Ney from sentences (already normalized words).

        Raises:
            ValueError: ``order < 1`` or no words at all.
        """
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        counts: dict[int, Counter[tuple[str, ...]]] = {n: Counter() for n in range(1, order + 1)}
        for sentence in sentences:
            tokens = [BOS, *sentence.split(), EOS]
            if len(tokens) == 2:
                continue
            for n in range(1, order + 1):
                for i in range(len(tokens) - n + 1):
                    counts[n][tuple(tokens[i : i + n])] += 1
        if not counts[1]:
            raise ValueError("no words to train a language model on")
        adjusted: dict[int, Counter[tuple[str, ...]]] = {order: counts[order]}
        for n in range(order - 1, 0, -1):
            cont: Counter[tuple[str, ...]] = Counter()
            for gram in counts[n + 1]:
                cont[gram[1:]] += 1
            adjusted[n] = Counter(
                {g: (c if g[0] == BOS else cont[g]) for g, c in counts[n].items()}
            )
        probs: dict[int, dict[tuple[str, ...], float]] = {}
        backoffs: dict[int, dict[tuple[str, ...], float]] = defaultdict(dict)
        # unigrams: interpolated with the uniform distribution over V
        uni = {g: a for g, a in adjusted[1].items() if g != (BOS,) and a > 0}
        discount = _discount(uni.values())
        vocab_size = len(uni) + (0 if (UNK,) in uni else 1)
        total = sum(uni.values())
        floor = discount * len(uni) / total / vocab_size
        probs[1] = {g: math.log(max(a - discount, 0.0) / total + floor) for g, a in uni.items()}
        probs[1].setdefault((UNK,), math.log(floor))
        probs[1][(BOS,)] = -99.0 * LOG10
        for n in range(2, order + 1):
            grams = adjusted[n]
            discount = _discount(grams.values())
            context_total: Counter[tuple[str, ...]] = Counter()
            context_types: Counter[tuple[str, ...]] = Counter()
            for gram, a in grams.items():
                context_total[gram[:-1]] += a
                context_types[gram[:-1]] += 1
            for h, t in context_total.items():
                backoffs[n - 1][h] = math.log(discount * context_types[h] / t)
            lm = cls(n - 1, probs, backoffs)
            table = {}
            for gram, a in grams.items():
                h = gram[:-1]
                lower = math.exp(lm.log_prob(h[1:], gram[-1])) if n > 1 else 0.0
                value = max(a - discount, 0.0) / context_total[h]
                table[gram] = math.log(value + math.exp(backoffs[n - 1][h]) * lower)
            probs[n] = table
        return cls(order, probs, dict(backoffs))

    # ------------------------------------------------------------ ARPA

    def to_arpa(self) -> str:
        """The model as ARPA text (log10 probabilities and back-off weights)."""
        lines = ["", "\\data\\"]
        lines += [f"ngram {n}={len(self.probs[n])}" for n in range(1, self.order + 1)]
        for n in range(1, self.order + 1):
            lines += ["", f"\\{n}-grams:"]
            offs = self.backoffs.get(n, {}) if n < self.order else {}
            for gram, value in sorted(self.probs[n].items()):
                row = f"{value / LOG10:.6f}\t{' '.join(gram)}"
                if gram in offs:
                    row += f"\t{offs[gram] / LOG10:.6f}"
                lines.append(row)
        lines += ["", "\\end\\", ""]
        return "\n".join(lines)

    @classmethod
    def read_arpa(cls, path: str | os.PathLike[str]) -> NGramLM:
        """Read an ARPA file (any toolkit's; ``<unk>`` gets ``-99`` if it has none).

        Raises:
            DataError: the file is missing or not ARPA (naming the file and line).
        """
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(f"{file}: cannot read the ARPA file ({err})") from None
        probs: dict[int, dict[tuple[str, ...], float]] = {}
        backoffs: dict[int, dict[tuple[str, ...], float]] = defaultdict(dict)
        order = 0
        section = 0
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            header = re.fullmatch(r"\\(\d+)-grams:", line)
            if header:
                section = int(header.group(1))
                order = max(order, section)
                probs[section] = {}
                continue
            if not line or line.startswith("\\") or line.startswith("ngram ") or not section:
                continue
            fields = line.split()
            try:
                value = float(fields[0])
                gram = tuple(fields[1 : 1 + section])
                if len(gram) != section:
                    raise ValueError
                probs[section][gram] = value * LOG10
                if len(fields) > 1 + section:
                    backoffs[section][gram] = float(fields[1 + section]) * LOG10
            except (ValueError, IndexError):
                raise DataError(
                    f"{file}, line {number}: not an ARPA {section}-gram line: {line[:60]!r}"
                ) from None
        if 1 not in probs or not probs[1]:
            raise DataError(f"{file}: no \\1-grams: section (not an ARPA file)")
        probs[1].setdefault((UNK,), -99.0 * LOG10)
        return cls(order, probs, dict(backoffs))


def _discount(values: Iterable[int]) -> float:
    """``n1 / (n1 + 2 n2)``, kept in ``[0.1, 0.9]`` (and 0.5 without singletons)."""
    counted = Counter(v for v in values if v <= 2)
    n1, n2 = counted[1], counted[2]
    if n1 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.1), 0.9)


def read_lm_text(
    path: str | os.PathLike[str], join_contractions: bool = True, exclude: Iterable[str] = ()
) -> list[str]:
    """Normalized sentences of a text file (one a line), for :meth:`NGramLM.train`.

    Words are normalized as transcripts are (:func:`rnnlab.speech.units.normalize_text`);
    ``<unk>`` stays the unknown word; with ``join_contractions`` a PTB-tokenized ``do n't``
    / ``it 's`` becomes ``don't`` / ``it's``. Lines equal to one of ``exclude`` (normalized
    evaluation transcripts) are dropped, so the LM never saw an evaluation sentence.

    Raises:
        DataError: the file cannot be read or holds no sentence.
    """
    file = Path(path)
    try:
        raw = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"LM text {file}: cannot read it ({err})") from None
    banned = set(exclude)
    out = []
    for line in raw.splitlines():
        if join_contractions:
            line = re.sub(r" n't\b", "n't", line)
            line = re.sub(r" '(s|re|ve|ll|d|m)\b", r"'\1", line)
        words = [UNK if w == UNK else normalize_text(w) for w in line.split()]
        sentence = " ".join(w for w in words if w)
        if sentence and sentence not in banned:
            out.append(sentence)
    if not out:
        raise DataError(f"LM text {file}: no sentences")
    return out
