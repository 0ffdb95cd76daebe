r"""CTC decoding: greedy (best path), prefix beam search, and per-token time alignment.

A CTC model emits, at each of ``T`` frames, log-probabilities over ``C`` classes, one of them
the blank. A *path* picks one class per frame; it maps to a token sequence by merging
repeated classes and then removing blanks (``a a - a b -`` gives ``a a b``), and the
probability of a sequence is the sum over all paths that map to it (Graves et al. 2006).

- :func:`ctc_greedy_decode` takes the most probable class at each frame (the best *path*).
  Cheap, but the most probable path need not map to the most probable *sequence*.
- :func:`ctc_beam_search` is prefix beam search: it keeps the ``beam_width`` most probable
  prefixes, each with two log-probabilities, of its paths ending in blank (``p_b``) and in
  its last token (``p_nb``), and extends them frame by frame::

      for each kept prefix y, frame t, class c:
        c = blank:          p_b(y)   += (p_b(y) + p_nb(y)) * P_t(blank)
        c = last token of y: p_nb(y)  += p_nb(y) * P_t(c)                  (repeat merges)
                            p_nb(y+c) += p_b(y) * P_t(c)                   (blank between)
        otherwise:          p_nb(y+c) += (p_b(y) + p_nb(y)) * P_t(c)

  With a beam as wide as the number of prefixes it is exact: the scores are
  ``log P(y | x)``, the same number ``torch.nn.functional.ctc_loss`` negates.
- :func:`ctc_align` finds the most probable path (Viterbi) that maps to a given token
  sequence and returns each token's frames, so a beam-search result gets word times too;
  :class:`TokenSpan` converts frames to seconds with the feature hop.

Everything runs on the CPU in float64 (decoding is sequential; move ``log_probs`` off the GPU
once per batch).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Hypothesis",
    "TokenSpan",
    "ctc_align",
    "ctc_beam_search",
    "ctc_greedy_decode",
    "decode_batch",
]

NEG_INF = -math.inf


def _logadd(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))`` for Python floats, exact at ``-inf``."""
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


@dataclass(frozen=True)
class TokenSpan:
    """Where one decoded token sits in time: frames ``start`` to ``end`` (exclusive).

    Attributes:
        token: the class index.
        start: first frame of the token's path segment.
        end: one past its last frame.
    """

    token: int
    start: int
    end: int

    def seconds(self, frame_seconds: float) -> tuple[float, float]:
        """``(start, end)`` in seconds for frames ``frame_seconds`` apart (the hop)."""
        return self.start * frame_seconds, self.end * frame_seconds


@dataclass(frozen=True)
class Hypothesis:
    """A decoded token sequence.

    Attributes:
        tokens: the class indices, blanks removed and repeats merged.
        log_prob: greedy: log-probability of the best path; beam search: of the sequence
            (summed over its paths kept in the beam).
        spans: one :class:`TokenSpan` per token (empty when alignment was not asked for).
    """

    tokens: tuple[int, ...]
    log_prob: float
    spans: tuple[TokenSpan, ...] = ()


def _as_matrix(log_probs: Tensor | np.ndarray, blank: int) -> np.ndarray:
    """Validate a ``(T, C)`` matrix of log-probabilities and return it as float64 numpy."""
    if isinstance(log_probs, Tensor):
        array = log_probs.detach().to("cpu", torch.float64).numpy()
    else:
        array = np.asarray(log_probs, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(
            f"log_probs must be (frames, classes) with >= 2 classes, got shape {array.shape}"
        )
    if not 0 <= blank < array.shape[1]:
        raise ValueError(f"blank={blank} is not a class index in [0, {array.shape[1] - 1}]")
    if np.isnan(array).any():
        raise ValueError("log_probs holds NaN")
    return array


def _entry(prefix: tuple[int, ...], table: dict[tuple[int, ...], list[float]]) -> list[float]:
    """The ``[log p_b, log p_nb]`` cell of ``prefix``, created at ``-inf`` when new."""
    if prefix not in table:
        table[prefix] = [NEG_INF, NEG_INF]
    return table[prefix]


def ctc_greedy_decode(log_probs: Tensor | np.ndarray, blank: int = 0) -> Hypothesis:
    """Best-path decoding: the argmax class per frame, repeats merged, blanks removed.

    Args:
        log_probs: ``(T, C)`` log-probabilities of one utterance.
        blank: index of the blank class.

    Returns:
        The :class:`Hypothesis`; each token's span covers the run of frames where the best
        path stays on it.

    Example:
        >>> import torch
        >>> lp = torch.log(torch.tensor([[.1, .8, .1], [.1, .8, .1], [.8, .1, .1], [.1, .1, .8]]))
        >>> hyp = ctc_greedy_decode(lp)
        >>> hyp.tokens, [(s.start, s.end) for s in hyp.spans]
        ((1, 2), [(0, 2), (3, 4)])
    """
    lp = _as_matrix(log_probs, blank)
    path = lp.argmax(axis=1)  # (T,)
    score = float(lp[np.arange(lp.shape[0]), path].sum())
    spans: list[TokenSpan] = []
    previous = blank
    for t, c in enumerate(path.tolist()):
        if c != blank and c != previous:
            spans.append(TokenSpan(c, t, t + 1))
        elif c != blank:  # the same token continues
            spans[-1] = TokenSpan(c, spans[-1].start, t + 1)
        previous = c
    return Hypothesis(tuple(s.token for s in spans), score, tuple(spans))


def ctc_beam_search(
    log_probs: Tensor | np.ndarray,
    beam_width: int = 16,
    blank: int = 0,
    *,
    top_k_tokens: int | None = None,
    nbest: int = 1,
    align: bool = True,
) -> list[Hypothesis]:
    """Prefix beam search over CTC outputs (no language model).

    Args:
        log_probs: ``(T, C)`` log-probabilities of one utterance.
        beam_width: prefixes kept after each frame.
        blank: index of the blank class.
        top_k_tokens: extend prefixes only with the ``k`` most probable classes of each
            frame (faster for large vocabularies); all classes when ``None``.
        nbest: how many hypotheses to return, best first.
        align: fill each hypothesis' ``spans`` with :func:`ctc_align`.

    Returns:
        Up to ``nbest`` hypotheses, by decreasing sequence log-probability.

    Example:
        >>> import torch
        >>> lp = torch.log(torch.tensor([[0.6, 0.4], [0.6, 0.4]]))  # blank = 0
        >>> ctc_greedy_decode(lp).tokens, ctc_beam_search(lp)[0].tokens
        ((), (1,))
    """
    if beam_width < 1 or nbest < 1:
        raise ValueError(f"beam_width and nbest must be >= 1, got {beam_width} and {nbest}")
    if top_k_tokens is not None and top_k_tokens < 1:
        raise ValueError(f"top_k_tokens must be >= 1 or None, got {top_k_tokens}")
    lp = _as_matrix(log_probs, blank)
    num_classes = lp.shape[1]
    # prefix -> [log p_b, log p_nb]
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, NEG_INF]}
    for frame in lp:
        if top_k_tokens is not None and top_k_tokens < num_classes:
            candidates = np.argpartition(-frame, top_k_tokens - 1)[:top_k_tokens].tolist()
        else:
            candidates = list(range(num_classes))
        extensions = [c for c in candidates if c != blank]
        nxt: dict[tuple[int, ...], list[float]] = {}

        for prefix, (p_b, p_nb) in beams.items():
            total = _logadd(p_b, p_nb)
            here = _entry(prefix, nxt)
            here[0] = _logadd(here[0], total + float(frame[blank]))
            last = prefix[-1] if prefix else None
            for c in extensions:
                p_c = float(frame[c])
                extended = _entry((*prefix, c), nxt)
                if c == last:
                    here[1] = _logadd(here[1], p_nb + p_c)
                    extended[1] = _logadd(extended[1], p_b + p_c)
                else:
                    extended[1] = _logadd(extended[1], total + p_c)
        ranked = sorted(nxt.items(), key=lambda item: -_logadd(*item[1]))
        beams = dict(ranked[:beam_width])
    ranked = sorted(beams.items(), key=lambda item: -_logadd(*item[1]))[:nbest]
    out = []
    for prefix, (p_b, p_nb) in ranked:
        spans = tuple(ctc_align(lp, prefix, blank)) if align else ()
        out.append(Hypothesis(prefix, _logadd(p_b, p_nb), spans))
    return out


def ctc_align(
    log_probs: Tensor | np.ndarray, tokens: Sequence[int], blank: int = 0
) -> list[TokenSpan]:
    """Viterbi forced alignment: the most probable path that maps to ``tokens``.

    The path runs through the extended label sequence ``blank, y_1, blank, y_2, ..., blank``
    (``S = 2L + 1`` states); at each frame it stays, moves one state on, or skips a blank
    between two different tokens.

    Args:
        log_probs: ``(T, C)`` log-probabilities of one utterance.
        tokens: the token sequence (no blanks).
        blank: index of the blank class.

    Returns:
        One :class:`TokenSpan` per token, in order.

    Raises:
        ValueError: ``tokens`` holds the blank, or cannot fit in ``T`` frames (it needs
            ``L`` frames plus one per pair of equal neighbours).
    """
    lp = _as_matrix(log_probs, blank)
    labels = list(tokens)
    if not labels:
        return []
    if blank in labels or min(labels) < 0 or max(labels) >= lp.shape[1]:
        raise ValueError(f"tokens must be class indices other than blank={blank}, got {labels}")
    steps = lp.shape[0]
    needed = len(labels) + sum(a == b for a, b in itertools.pairwise(labels))
    if needed > steps:
        raise ValueError(f"{len(labels)} tokens need at least {needed} frames, got {steps}")
    ext = np.full(2 * len(labels) + 1, blank, dtype=np.int64)
    ext[1::2] = labels
    states = ext.size
    can_skip = np.zeros(states, dtype=bool)
    can_skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    score = np.full(states, NEG_INF)
    score[:2] = lp[0, ext[:2]]
    back = np.zeros((steps, states), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, steps):
        stay = score
        step = np.concatenate([[NEG_INF], score[:-1]])
        skip = np.where(can_skip, np.concatenate([[NEG_INF, NEG_INF], score[:-2]]), NEG_INF)
        options = np.stack([stay, step, skip])  # (3, S)
        back[t] = options.argmax(axis=0)
        score = options.max(axis=0) + lp[t, ext]
    state = states - 1 if score[-1] >= score[-2] else states - 2
    owner = np.empty(steps, dtype=np.int64)  # state of each frame on the best path
    for t in range(steps - 1, -1, -1):
        owner[t] = state
        state -= int(back[t, state])
    spans: list[TokenSpan] = []
    for index, token in enumerate(labels):
        frames = np.flatnonzero(owner == 2 * index + 1)
        spans.append(TokenSpan(token, int(frames[0]), int(frames[-1]) + 1))
    return spans


def decode_batch(
    log_probs: Tensor,
    lengths: Tensor | Sequence[int] | None = None,
    *,
    blank: int = 0,
    beam_width: int = 1,
) -> list[Hypothesis]:
    """Decode a batch ``(B, T, C)``: greedy when ``beam_width == 1``, else prefix beam search.

    Args:
        log_probs: ``(B, T, C)`` log-probabilities (batch first, as ``CTCModel`` returns).
        lengths: valid frames per utterance; all ``T`` when omitted.
        blank: index of the blank class.
        beam_width: 1 for greedy decoding, more for beam search.

    Returns:
        The best hypothesis of each utterance, with token spans.
    """
    if log_probs.dim() != 3:
        raise ValueError(
            f"log_probs must be (batch, frames, classes), got {tuple(log_probs.shape)}"
        )
    matrix = log_probs.detach().to("cpu", torch.float64)
    frames = [matrix.shape[1]] * matrix.shape[0] if lengths is None else [int(n) for n in lengths]
    if len(frames) != matrix.shape[0]:
        raise ValueError(f"lengths has {len(frames)} entries for a batch of {matrix.shape[0]}")
    out = []
    for row, n in enumerate(frames):
        if not 1 <= n <= matrix.shape[1]:
            raise ValueError(f"lengths[{row}]={n} is not in [1, {matrix.shape[1]}]")
        lp = matrix[row, :n]
        if beam_width == 1:
            out.append(ctc_greedy_decode(lp, blank))
        else:
            out.append(ctc_beam_search(lp, beam_width, blank)[0])
    return out
