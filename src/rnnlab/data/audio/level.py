"""Signal level of a recording in dB relative to full scale (dBFS), loudness normalization
and trimming of leading and trailing silence.

Full scale is a sample value of 1.0, the limit of a float waveform in ``[-1, 1]`` as
:func:`rnnlab.data.audio.load_audio` returns it, so a full-scale sine peaks at 0 dBFS and
digital silence (all zeros) is ``-inf`` dBFS.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["normalize_loudness", "peak_dbfs", "rms_dbfs", "speech_bounds", "trim_silence"]


def peak_dbfs(samples: Tensor, *, remove_dc: bool = True) -> float:
    """The peak level ``20 log10(max |x|)`` of a waveform, in dBFS.

    Args:
        samples: the waveform, any shape (all samples count).
        remove_dc: subtract the mean first, so a constant offset (a DC bias of the
            converter, inaudible) does not count as signal.

    Returns:
        The level in dBFS; ``-inf`` when every sample is 0 (after removing the mean) or
        there are no samples.

    Example:
        >>> import torch
        >>> round(peak_dbfs(torch.tensor([0.0, 0.5, -0.5, 0.0])), 2)
        -6.02
        >>> peak_dbfs(torch.zeros(100))
        -inf
    """
    if samples.numel() == 0:
        return -math.inf
    x = samples.double()
    if remove_dc:
        x = x - x.mean()
    peak = float(x.abs().max())
    return 20.0 * math.log10(peak) if peak > 0.0 else -math.inf


def rms_dbfs(samples: Tensor) -> float:
    """The RMS level ``10 log10(mean(x^2))`` of a waveform, in dBFS (``-inf`` when silent).

    Example:
        >>> import torch
        >>> round(rms_dbfs(0.1 * torch.ones(100)), 2)
        -20.0
    """
    if samples.numel() == 0:
        return -math.inf
    power = float(samples.double().pow(2).mean())
    return 10.0 * math.log10(power) if power > 0.0 else -math.inf


def normalize_loudness(samples: Tensor, target_dbfs: float) -> Tensor:
    """Scale a waveform so that its RMS level is ``target_dbfs`` (silence is returned as is).

    Why: the same word recorded near or far from a microphone differs only by a gain; a
    fixed RMS level makes the waveform, and the SNR of added noise, independent of it. (With
    per-utterance feature normalization a gain only shifts ``c0`` and is removed anyway;
    without it, or with log-mel features, it is not.)

    Example:
        >>> import torch
        >>> round(rms_dbfs(normalize_loudness(0.5 * torch.randn(8000), -23.0)), 3)
        -23.0
    """
    level = rms_dbfs(samples)
    if math.isinf(level):
        return samples
    return samples * (10.0 ** ((target_dbfs - level) / 20.0))


def speech_bounds(
    samples: Tensor,
    sample_rate: int,
    threshold_db: float,
    *,
    frame_ms: float = 10.0,
    margin_ms: float = 30.0,
    min_samples: int = 1,
) -> tuple[int, int]:
    """``(start, end)`` sample bounds of a recording without its leading and trailing silence.

    The waveform (mean removed) is cut into frames of ``frame_ms``; a frame is speech when its
    RMS level is within ``threshold_db`` of the loudest frame's. The bounds run from the first
    to the last speech frame, widened by ``margin_ms`` on each side (word onsets and the tail
    of a fricative are quieter than the vowel) and to at least ``min_samples`` samples.
    Silence *inside* the recording is kept: only the ends are trimmed.

    Args:
        samples: ``(N,)`` waveform.
        sample_rate: its rate in Hz.
        threshold_db: frames more than this many dB below the loudest frame are silence.
        frame_ms: analysis frame length.
        margin_ms: kept on each side of the speech.
        min_samples: the bounds span at least this many samples (when the recording has them).

    Example:
        >>> import torch
        >>> x = torch.zeros(8000)
        >>> x[3200:4000] = torch.sin(torch.arange(800) * 0.3)
        >>> speech_bounds(x, 8000, 40.0, margin_ms=0.0)
        (3200, 4000)
    """
    size = samples.numel()
    frame = max(1, round(frame_ms * sample_rate / 1000))
    count = -(-size // frame)
    x = samples.double() - samples.double().mean()
    padded = torch.zeros(count * frame, dtype=torch.float64)
    padded[:size] = x
    power = padded.view(count, frame).pow(2).mean(dim=1)  # (frames,)
    top = float(power.max()) if count else 0.0
    if top <= 0.0:
        return 0, size
    loud = torch.nonzero(power >= top * 10.0 ** (-threshold_db / 10.0)).flatten()
    margin = round(margin_ms * sample_rate / 1000)
    start = max(0, int(loud[0]) * frame - margin)
    end = min(size, (int(loud[-1]) + 1) * frame + margin)
    short = min(size, min_samples) - (end - start)
    if short > 0:  # widen evenly, then against whichever edge is free
        start = max(0, start - short // 2 - short % 2)
        end = min(size, start + min(size, min_samples))
        start = max(0, end - min(size, min_samples))
    return start, end


def trim_silence(
    samples: Tensor,
    sample_rate: int,
    threshold_db: float,
    *,
    margin_ms: float = 30.0,
    min_samples: int = 1,
) -> Tensor:
    """The recording without its leading and trailing silence (see :func:`speech_bounds`)."""
    start, end = speech_bounds(
        samples, sample_rate, threshold_db, margin_ms=margin_ms, min_samples=min_samples
    )
    return samples[start:end]
