"""CTC decoding on hand-made log-probabilities: greedy, prefix beam search, alignment."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlab.speech import (
    TokenSpan,
    ctc_align,
    ctc_beam_search,
    ctc_greedy_decode,
    decode_batch,
)


def logs(rows: list[list[float]]) -> torch.Tensor:
    return torch.log(torch.tensor(rows, dtype=torch.float64))


def collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
    return tuple(c for c in merged if c != blank)


def brute_force(lp: np.ndarray, blank: int = 0) -> dict[tuple[int, ...], float]:
    """log P(sequence) by summing over every path: the definition of CTC."""
    probs: dict[tuple[int, ...], float] = {}
    steps, classes = lp.shape
    for path in itertools.product(range(classes), repeat=steps):
        p = math.exp(sum(lp[t, c] for t, c in enumerate(path)))
        key = collapse(path, blank)
        probs[key] = probs.get(key, 0.0) + p
    return {k: math.log(v) for k, v in probs.items() if v > 0}


def test_greedy_merges_repeats_and_drops_blanks_with_spans() -> None:
    # best path: a a - a b b -  -> a a b
    rows = [[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1],
            [0.1, 0.2, 0.7], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]]  # fmt: skip
    hyp = ctc_greedy_decode(logs(rows))
    assert hyp.tokens == (1, 1, 2)
    assert hyp.spans == (TokenSpan(1, 0, 2), TokenSpan(1, 3, 4), TokenSpan(2, 4, 6))
    expected = math.log(0.8 * 0.7 * 0.9 * 0.8 * 0.7 * 0.8 * 0.7)
    assert hyp.log_prob == pytest.approx(expected)
    assert hyp.spans[2].seconds(0.01) == pytest.approx((0.04, 0.06))


def test_beam_search_beats_greedy_on_a_constructed_case() -> None:
    # Two frames, P(blank) = 0.6, P(a) = 0.4 each. Best path "- -" gives the empty
    # sequence (0.36), but "a" collects a a, a -, - a: 0.16 + 0.24 + 0.24 = 0.64.
    lp = logs([[0.6, 0.4], [0.6, 0.4]])
    assert ctc_greedy_decode(lp).tokens == ()
    best, second = ctc_beam_search(lp, beam_width=4, nbest=2)
    assert best.tokens == (1,)
    assert best.log_prob == pytest.approx(math.log(0.64))
    assert second.tokens == () and second.log_prob == pytest.approx(math.log(0.36))


def test_beam_search_beats_greedy_on_a_longer_sequence() -> None:
    # The best path a b c has probability 0.5 * 0.34 * 0.5 = 0.085 and spells "a b c", but
    # "a c" collects a c c, a - c and a c - (0.5 * (0.165 + 0.165 + 0.066) = 0.198, more with
    # paths starting on blank or c): beam search finds it, greedy cannot.
    rows = [[0.2, 0.5, 0.15, 0.15], [0.33, 0.0, 0.34, 0.33], [0.2, 0.0, 0.3, 0.5]]
    lp = logs(rows)
    exact = brute_force(lp.numpy())
    greedy = ctc_greedy_decode(lp)
    beam = ctc_beam_search(lp, beam_width=8)[0]
    assert greedy.tokens == (1, 2, 3) and beam.tokens == (1, 3)
    assert exact[beam.tokens] > exact[greedy.tokens]
    assert beam.tokens == max(exact, key=exact.__getitem__)


@pytest.mark.parametrize("seed", range(5))
def test_wide_beam_is_exact_against_brute_force_and_ctc_loss(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    lp = torch.log_softmax(2.0 * torch.randn(5, 3, generator=gen, dtype=torch.float64), dim=-1)
    exact = brute_force(lp.numpy())
    hyps = ctc_beam_search(lp, beam_width=1000, nbest=len(exact), align=False)
    assert len(hyps) == len(exact)
    for hyp in hyps:
        assert hyp.log_prob == pytest.approx(exact[hyp.tokens], abs=1e-9)
    assert hyps[0].tokens == max(exact, key=exact.__getitem__)
    best = hyps[0]
    if best.tokens:  # torch's CTC loss is -log P(y|x): an independent check of the score
        loss = F.ctc_loss(lp[:, None, :], torch.tensor([best.tokens]), torch.tensor([5]),
                          torch.tensor([len(best.tokens)]), reduction="sum")  # fmt: skip
        assert -float(loss) == pytest.approx(best.log_prob, abs=1e-9)


def test_narrow_beam_and_token_pruning_still_find_a_clear_answer() -> None:
    rows = [[0.05, 0.9, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02], [0.05, 0.02, 0.03, 0.9]] * 3
    lp = logs(rows)
    for width, top_k in [(1, None), (2, 2), (8, 1)]:
        assert ctc_beam_search(lp, width, top_k_tokens=top_k)[0].tokens == (1, 3, 1, 3, 1, 3)


def test_alignment_gives_token_frames_of_the_best_path() -> None:
    # frames: - a a - - b - : a spans [1, 3), b spans [5, 6)
    rows = [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.8, 0.1, 0.1],
            [0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]]  # fmt: skip
    lp = logs(rows)
    assert ctc_align(lp, [1, 2]) == [TokenSpan(1, 1, 3), TokenSpan(2, 5, 6)]
    hyp = ctc_beam_search(lp, beam_width=4)[0]
    assert hyp.tokens == (1, 2) and list(hyp.spans) == ctc_align(lp, [1, 2])
    # forced alignment of a sequence the frames do not favour still covers every token once
    spans = ctc_align(lp, [2, 2, 1])
    assert [s.token for s in spans] == [2, 2, 1]
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert spans[1].start - spans[0].end >= 1  # a blank between the repeated token


def test_alignment_rejects_impossible_sequences() -> None:
    lp = logs([[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="need at least 3 frames, got 2"):
        ctc_align(lp, [1, 1])
    with pytest.raises(ValueError, match="other than blank=0"):
        ctc_align(lp, [0])


def test_decode_batch_respects_lengths_and_methods() -> None:
    a = logs([[0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])  # a - a -> a a
    padded = torch.stack([a, torch.cat([logs([[0.1, 0.9]]), logs([[0.1, 0.9]] * 2)])])
    greedy = decode_batch(padded, lengths=[3, 1])
    assert [h.tokens for h in greedy] == [(1, 1), (1,)]
    beam = decode_batch(padded, lengths=torch.tensor([3, 1]), beam_width=4)
    assert [h.tokens for h in beam] == [(1, 1), (1,)]
    with pytest.raises(ValueError, match=r"lengths\[1\]=4 is not in \[1, 3\]"):
        decode_batch(padded, lengths=[3, 4])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="blank=5"):
        ctc_greedy_decode(torch.zeros(3, 4), blank=5)
    with pytest.raises(ValueError, match="shape"):
        ctc_beam_search(torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        ctc_greedy_decode(torch.full((2, 3), float("nan")))
