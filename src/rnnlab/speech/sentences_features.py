r"""Frame stacking, and features computed chunk by chunk that equal the offline ones.

**Stacking** (:func:`stack_frames`) is the encoder's subsampling: ``k`` consecutive frames
are concatenated into one step, so the recurrent layers run at ``1/k`` of the frame rate
(``k = 3`` at a 10 ms hop: 33 steps a second, enough for CTC at the ~23 characters a second
of fast speech) and a long utterance trains ``k`` times faster::

    (T, F) --zero-pad to a multiple of k--> (ceil(T/k) k, F) --reshape--> (ceil(T/k), k F)

**Streaming features** (:class:`StreamingFeatures`): the offline pipeline (a centered STFT,
frame ``t`` over samples ``[t hop - n_fft/2, t hop + n_fft/2)`` of the zero-padded signal,
pre-emphasis ``y[n] = x[n] - a x[n-1]``) is causal up to half a window, so a stream can be
framed exactly like the whole signal: the stream starts with ``n_fft/2`` zeros, pre-emphasis
carries its last sample, every complete window is emitted as soon as its samples arrived, and
:meth:`StreamingFeatures.finish` appends the final ``n_fft/2`` zeros. Per-utterance
normalization and deltas look at the future, so streaming needs
``features.normalize = false`` and ``features.deltas = 0`` (:func:`check_streamable`).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from rnnlab.data.audio import FeatureConfig, FeatureExtractor
from rnnlab.errors import ConfigError

__all__ = ["StreamingFeatures", "check_streamable", "stack_frames", "stacked_lengths"]


def stack_frames(features: Tensor, stack: int) -> Tensor:
    """Concatenate ``stack`` consecutive frames: ``(..., T, F)`` -> ``(..., ceil(T/k), k F)``.

    Example:
        >>> stack_frames(torch.arange(10.).reshape(5, 2), 2).tolist()
        [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 0.0, 0.0]]
    """
    if stack == 1:
        return features
    frames = features.shape[-2]
    missing = (-frames) % stack
    if missing:
        pad = features.new_zeros((*features.shape[:-2], missing, features.shape[-1]))
        features = torch.cat([features, pad], dim=-2)
    steps = features.shape[-2] // stack
    return features.reshape(*features.shape[:-2], steps, stack * features.shape[-1])


def stacked_lengths(frames: Tensor, stack: int) -> Tensor:
    """Steps after stacking: ``ceil(frames / stack)``."""
    return torch.div(frames + stack - 1, stack, rounding_mode="floor")


def check_streamable(config: FeatureConfig) -> None:
    """Raise :class:`ConfigError` when the features look ahead (normalization, deltas)."""
    if config.normalize or config.deltas or not config.center:
        raise ConfigError(
            "streaming needs data.features.normalize = false and data.features.deltas = 0 "
            "(both look at future frames); this run has "
            f"normalize={config.normalize}, deltas={config.deltas}"
        )


class StreamingFeatures:
    """Feature frames of a stream of samples, equal to the whole-signal features.

    Args:
        config: the run's (streamable) feature configuration.

    Example:
        >>> cfg = FeatureConfig(sample_rate=8000, kind="logmel", deltas=0, normalize=False)
        >>> stream, wave = StreamingFeatures(cfg), torch.randn(4000)
        >>> parts = [stream.push(wave[i : i + 700]) for i in range(0, 4000, 700)]
        >>> online = torch.cat([*parts, stream.finish()])
        >>> offline, _ = FeatureExtractor(cfg)(wave)
        >>> online.shape == offline.shape and torch.allclose(online, offline, atol=1e-4)
        True
    """

    def __init__(self, config: FeatureConfig) -> None:
        check_streamable(config)
        self.config = config
        framing = replace(config, center=False, pre_emphasis=None, normalize=False)
        self._frames = FeatureExtractor(framing)
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        half = self.config.fft_size // 2
        self._buffer = torch.zeros(half)  # the offline zero padding before the signal
        self._last = 0.0  # pre-emphasis memory (y[0] = x[0])
        self._emitted = 0
        self._received = 0

    def push(self, samples: Tensor) -> Tensor:
        """Add samples; return the ``(n, F)`` frames whose windows are now complete."""
        x = samples.detach().to(torch.float32).reshape(-1)
        self._received += x.numel()
        if self.config.pre_emphasis is not None and x.numel():
            previous = torch.cat([torch.tensor([self._last]), x[:-1]])
            self._last = float(x[-1])
            x = x - self.config.pre_emphasis * previous
        self._buffer = torch.cat([self._buffer, x])
        return self._take()

    def finish(self) -> Tensor:
        """The last frames (the stream padded with ``n_fft/2`` zeros, as offline)."""
        self._buffer = torch.cat([self._buffer, torch.zeros(self.config.fft_size // 2)])
        total = self.config.num_frames(self._received) if self._received else 0
        return self._take(limit=total - self._emitted)

    def _take(self, limit: int | None = None) -> Tensor:
        cfg = self.config
        n_fft, hop = cfg.fft_size, cfg.hop_length
        ready = 0 if self._buffer.numel() < n_fft else 1 + (self._buffer.numel() - n_fft) // hop
        if limit is not None:
            ready = min(ready, max(limit, 0))
        if ready == 0:
            return torch.zeros(0, cfg.num_features)
        used = (ready - 1) * hop + n_fft
        with torch.no_grad():
            frames, _ = self._frames(self._buffer[:used])  # (ready, F)
        self._buffer = self._buffer[ready * hop :]
        self._emitted += ready
        return frames
