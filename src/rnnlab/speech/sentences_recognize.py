r"""Transcribing a recording with a ``speech-sentences`` run: greedy or LM beam, word times,
confidences, and the streaming pass.

:func:`transcribe` runs the whole utterance (features, stacking, model) and decodes it
greedily or with :class:`~rnnlab.speech.lm_beam.LMDecoder` (the run's ``lm.arpa`` and the
alpha/beta tuned on valid, from ``decoding.json``); :func:`transcribe_stream` feeds the same
samples chunk by chunk through :class:`~rnnlab.speech.streaming.StreamingRecognizer`.

Word times come from the Viterbi alignment of the transcript's units (a word runs from its
first unit's first step to its last unit's last step, in seconds: steps are
``hop * stack`` apart). A word's confidence is the smallest, over its units, of the mean
posterior of that unit across its aligned steps: a word is as sure as its least sure unit.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.data.audio import FeatureExtractor
from rnnlab.speech.ctc import TokenSpan, ctc_align, ctc_greedy_decode
from rnnlab.speech.sentences import SpeechSentencesTask
from rnnlab.speech.sentences_features import stack_frames
from rnnlab.speech.streaming import StreamingRecognizer, latency_summary
from rnnlab.speech.units import WORD_START, TextUnits

__all__ = ["sentence_words", "transcribe", "transcribe_stream"]


def sentence_words(
    spans: list[TokenSpan], log_probs: Tensor, units: TextUnits, step_seconds: float
) -> list[dict[str, Any]]:
    """Words of aligned units with ``start``/``end`` (seconds) and ``confidence``.

    Example:
        >>> units = TextUnits.characters()
        >>> lp = torch.log(torch.full((4, units.num_classes), 1e-3)); lp[:, 3] = 0.0
        >>> sentence_words([TokenSpan(3, 1, 3)], lp, units, 0.03)
        [{'word': 'a', 'start': 0.03, 'end': 0.09, 'confidence': 1.0}]
    """
    groups: list[list[TokenSpan]] = []
    for span in spans:
        piece = units.tokens[span.token - 1]
        if piece == " ":
            groups.append([])
            continue
        if not groups or (units.kind == "wordpiece" and piece.startswith(WORD_START)):
            groups.append([])
        groups[-1].append(span)
    out = []
    posteriors = log_probs.exp()
    for group in (g for g in groups if g):
        text = "".join(units.tokens[s.token - 1] for s in group).replace(WORD_START, "")
        confidence = min(float(posteriors[s.start : s.end, s.token].mean()) for s in group)
        out.append(
            {
                "word": text,
                "start": round(group[0].start * step_seconds, 4),
                "end": round(group[-1].end * step_seconds, 4),
                "confidence": round(min(confidence, 1.0), 4),
            }
        )
    return out


def _step_seconds(task: SpeechSentencesTask) -> float:
    cfg = task.feature_config
    return cfg.hop_length * task.data_config.stack / cfg.sample_rate


@torch.no_grad()
def sentence_log_probs(
    task: SpeechSentencesTask, model: nn.Module, extractor: FeatureExtractor, samples: Tensor
) -> Tensor:
    """``(T/k, C)`` log-probabilities of one utterance's samples, the whole utterance at once."""
    features, frames = extractor(samples)
    x = stack_frames(features[: int(frames)], task.data_config.stack).unsqueeze(0)
    device = next(model.parameters()).device
    lengths = torch.tensor([x.shape[1]])
    log_probs, _ = model(x.to(device), lengths)
    return log_probs[0].float().cpu()


def _decode(
    task: SpeechSentencesTask,
    log_probs: Tensor,
    lm: bool,
    beam_width: int | None,
    alpha: float | None,
    beta: float | None,
) -> dict[str, Any]:
    units = task.units
    if lm and task.lm is not None and log_probs.shape[0]:
        from rnnlab.speech.lm_beam import LMDecoder

        tuned = task.decoding
        settings = task.data_config.lm
        decoder = LMDecoder(
            units,
            task.lm,
            alpha if alpha is not None else float(tuned.get("alpha", settings.alpha)),
            beta if beta is not None else float(tuned.get("beta", settings.beta)),
            beam_width or int(tuned.get("beam_width", settings.beam_width)),
            settings.prune,
            lexicon=settings.lexicon,
        )
        hyp = decoder.decode(log_probs)
        tokens, score = hyp.tokens, hyp.acoustic
        spans = ctc_align(log_probs, tokens) if tokens else []
        decoding = f"beam {decoder.beam_width} + LM (alpha {decoder.alpha}, beta {decoder.beta})"
    else:
        greedy = ctc_greedy_decode(log_probs) if log_probs.shape[0] else None
        tokens = greedy.tokens if greedy else ()
        score = greedy.log_prob if greedy else 0.0
        spans = list(greedy.spans) if greedy else []
        decoding = "greedy"
    return {
        "transcript": units.decode(tokens),
        "log_prob": float(score) if math.isfinite(score) else None,
        "decoding": decoding,
        "words": sentence_words(spans, log_probs, units, _step_seconds(task)),
    }


def transcribe(
    task: SpeechSentencesTask,
    model: nn.Module,
    extractor: FeatureExtractor,
    samples: Tensor,
    *,
    lm: bool = False,
    beam_width: int | None = None,
    alpha: float | None = None,
    beta: float | None = None,
) -> dict[str, Any]:
    """Transcript, log-probability, decoding used and words (times, confidences)."""
    log_probs = sentence_log_probs(task, model, extractor, samples)
    return _decode(task, log_probs, lm, beam_width, alpha, beta)


def transcribe_stream(
    task: SpeechSentencesTask,
    model: nn.Module,
    samples: Tensor,
    chunk_ms: float,
    *,
    lm: bool = False,
    beam_width: int | None = None,
    alpha: float | None = None,
    beta: float | None = None,
) -> dict[str, Any]:
    """The streaming pass over ``samples`` in chunks of ``chunk_ms``: the result of
    :func:`transcribe` (greedy: the streamed transcript itself; with ``lm`` the beam search
    over the streamed log-probabilities) plus ``latency`` (median and p95 ms per chunk)."""
    if chunk_ms <= 0:
        raise ValueError(f"chunk size must be > 0 ms, got {chunk_ms}")
    cfg = task.feature_config
    size = max(1, round(chunk_ms * cfg.sample_rate / 1000.0))
    stream = StreamingRecognizer(model, cfg, task.data_config.stack, task.units)
    for begin in range(0, samples.numel(), size):
        stream.push(samples[begin : begin + size])
    result = stream.finish()
    out = _decode(task, result.log_probs, lm, beam_width, alpha, beta)
    if not lm:
        out["transcript"] = result.text  # the incremental decode (equals the greedy one)
    out["latency"] = {"chunk_ms": chunk_ms, **latency_summary(result.latencies)}
    return out
