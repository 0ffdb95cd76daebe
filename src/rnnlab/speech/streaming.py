r"""Streaming recognition: audio chunk by chunk through a unidirectional model, state carried.

:class:`StreamingRecognizer` takes chunks of samples (:meth:`~StreamingRecognizer.push`) and
returns the text recognized so far; :meth:`~StreamingRecognizer.finish` ends the utterance::

    chunk --StreamingFeatures (same frames as offline)--> frames --buffer k--> stacked steps
      --model(steps, state) (state carried: h, c of every layer)--> log-probs
      --greedy CTC, incremental (argmax per step, repeats merged, blanks dropped)--> text

Every stage equals its whole-utterance counterpart (the features by construction, the
stacking by buffering ``k`` frames and zero-padding the last ones as :func:`stack_frames`
does, the unidirectional recurrence by carrying its state), so the final transcript is the
offline greedy transcript of the same model; the test checks it. A bidirectional model is
refused (its backward direction needs the whole utterance). The wall time of each
:meth:`push` is kept in :attr:`StreamingRecognizer.latencies` (seconds).

Example:
    >>> stream = StreamingRecognizer(model, features, stack=3, units=units)  # doctest: +SKIP
    >>> for chunk in chunks:  # doctest: +SKIP
    ...     partial = stream.push(chunk)
    >>> stream.finish().text  # doctest: +SKIP
    'the cat sat'
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.data.audio import FeatureConfig
from rnnlab.errors import ConfigError
from rnnlab.speech.sentences_features import StreamingFeatures, stack_frames
from rnnlab.speech.units import TextUnits

__all__ = ["StreamResult", "StreamingRecognizer", "latency_summary"]


@dataclass
class StreamResult:
    """The end of one streamed utterance.

    Attributes:
        text: the greedy transcript.
        tokens: its unit classes.
        log_probs: ``(T, C)`` log-probabilities of every step (for a beam search or times).
        latencies: seconds each chunk took to process.
    """

    text: str
    tokens: tuple[int, ...]
    log_probs: Tensor
    latencies: list[float] = field(default_factory=list)


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """Median and 95th percentile of per-chunk latencies, in milliseconds."""
    if not latencies:
        return {"chunks": 0, "median_ms": 0.0, "p95_ms": 0.0}
    values = torch.tensor(latencies, dtype=torch.float64) * 1000.0
    return {
        "chunks": len(latencies),
        "median_ms": round(float(values.median()), 3),
        "p95_ms": round(float(torch.quantile(values, 0.95)), 3),
    }


class StreamingRecognizer:
    """Chunk-by-chunk greedy CTC recognition with a unidirectional model.

    Args:
        model: a ``SequenceModel`` with a CTC head (called as ``model(x, None, state)``).
        features: the run's feature configuration (streamable, see
            :func:`~rnnlab.speech.sentences_features.check_streamable`).
        stack: frames stacked per step (``data.stack``).
        units: the run's units.

    Raises:
        ConfigError: the model is bidirectional, or the features look ahead.
    """

    def __init__(
        self, model: nn.Module, features: FeatureConfig, stack: int, units: TextUnits
    ) -> None:
        recurrent = getattr(model, "recurrent", None)
        if recurrent is None or getattr(recurrent, "bidirectional", False):
            raise ConfigError(
                "streaming needs a unidirectional model (model.bidirectional = false); "
                "this run's model is bidirectional"
            )
        self.model = model.eval()
        self.features = StreamingFeatures(features)
        self.stack = stack
        self.units = units
        self.reset()

    def reset(self) -> None:
        """Start a new utterance."""
        self.features.reset()
        self._pending = torch.zeros(0, self.features.config.num_features)
        self._state: Any = None
        self._previous = 0
        self._tokens: list[int] = []
        self._outputs: list[Tensor] = []
        self.latencies: list[float] = []

    @property
    def text(self) -> str:
        """The transcript so far."""
        return self.units.decode(self._tokens)

    @torch.no_grad()
    def push(self, samples: Tensor) -> str:
        """Feed a chunk of samples (at the run's rate); returns the transcript so far."""
        start = time.perf_counter()
        frames = self.features.push(samples)
        self._pending = torch.cat([self._pending, frames])
        usable = (self._pending.shape[0] // self.stack) * self.stack
        if usable:
            self._run(self._pending[:usable])
            self._pending = self._pending[usable:]
        self.latencies.append(time.perf_counter() - start)
        return self.text

    @torch.no_grad()
    def finish(self) -> StreamResult:
        """End the utterance: the last frames (zero-padded to a full step) and the result."""
        start = time.perf_counter()
        rest = torch.cat([self._pending, self.features.finish()])
        if rest.shape[0]:
            self._run(rest)  # stack_frames zero-pads the last step, as offline
        self._pending = rest[:0]
        self.latencies.append(time.perf_counter() - start)
        width = self.units.num_classes
        log_probs = torch.cat(self._outputs) if self._outputs else torch.zeros(0, width)
        return StreamResult(self.text, tuple(self._tokens), log_probs, list(self.latencies))

    def _run(self, frames: Tensor) -> None:
        x = stack_frames(frames, self.stack).unsqueeze(0)  # (1, n, k F)
        device = next(self.model.parameters()).device
        log_probs, self._state = self.model(x.to(device), None, self._state)
        out = log_probs[0].float().cpu()  # (n, C)
        self._outputs.append(out)
        for c in out.argmax(dim=-1).tolist():
            if c != 0 and c != self._previous:
                self._tokens.append(c)
            self._previous = c
