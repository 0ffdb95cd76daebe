"""Screening a recording before recognition: too short to analyse, or silent.

A speech model never says "nothing here" by itself: features are normalized per utterance
(mean and variance over the recording's frames), so digital silence or faint hiss is scaled
up to the same range as a word, and the classifier answers a digit with high confidence.
:func:`screen_recording` is therefore run on every recording before the model:

- **Too short** (an error, :class:`~rnnlab.data.audio.AudioError`): fewer samples than one
  analysis window of the run's features (``window_ms``, 25 ms by default). Such a recording
  does not fill a single frame, so there is nothing to recognize.
- **Silent** (a valid answer, "no speech found"): the peak level of the whole recording,
  its DC offset removed, is below :data:`SILENCE_PEAK_DBFS`.

Why the peak over the whole recording, and why -60 dBFS: a word anywhere in a recording
raises its peak, however long the silence around it, so this rule never calls a recording
with a word in it silent (an RMS over the recording would: one short word in 5 s of silence
has a low mean energy). Speech recorded at any usable gain peaks between about -30 and
-1 dBFS, and a quiet but real recording at -40 dBFS is still recognized (the per-utterance
normalization removes the gain). Below that, a microphone with no one talking gives room
tone and converter hiss around -90 (16-bit dither) to -65 dBFS. -60 dBFS sits 20 dB below
the quietest recording we still recognize and well above those floors.
"""

from __future__ import annotations

import math
from typing import Final

from rnnlab.data.audio import Audio, AudioError, FeatureConfig, peak_dbfs

__all__ = ["SILENCE_PEAK_DBFS", "check_length", "silence_notice"]

SILENCE_PEAK_DBFS: Final[float] = -60.0
"""A recording whose peak (DC removed) is below this level, in dBFS, holds no speech."""


def check_length(audio: Audio, config: FeatureConfig) -> None:
    """Reject a recording shorter than one analysis window of ``config``.

    Raises:
        AudioError: with a one-line message naming the file, its length and the window.

    Example:
        >>> import torch
        >>> from pathlib import Path
        >>> audio = Audio(torch.zeros(40), 8000, Path("blip.wav"))
        >>> try:
        ...     check_length(audio, FeatureConfig(sample_rate=8000))
        ... except AudioError as err:
        ...     print(str(err).split(", ")[0])
        blip.wav: the recording is 40 samples (5.0 ms) long
    """
    samples = audio.samples.numel()
    if samples < config.win_length:
        unit = "sample" if samples == 1 else "samples"
        raise AudioError(
            f"{audio.path}: the recording is {samples} {unit} "
            f"({1000 * samples / audio.sample_rate:.1f} ms) long, shorter than one feature "
            f"window ({config.win_length} samples, {config.window_ms:g} ms); "
            "too short to recognize"
        )


def silence_notice(audio: Audio, threshold_dbfs: float = SILENCE_PEAK_DBFS) -> str | None:
    """The "no speech found" notice for a silent recording, ``None`` for one with signal.

    Args:
        audio: the recording.
        threshold_dbfs: a peak (DC removed) below this is silence.

    Example:
        >>> import torch
        >>> from pathlib import Path
        >>> silence_notice(Audio(torch.zeros(8000), 8000, Path("silent.wav")))
        'no speech found in silent.wav (peak -inf dBFS, below the -60 dBFS silence threshold)'
        >>> tone = 0.01 * torch.sin(torch.arange(8000) * 0.5)  # peak -40 dBFS
        >>> silence_notice(Audio(tone, 8000, Path("quiet.wav"))) is None
        True
    """
    peak = peak_dbfs(audio.samples)
    if peak >= threshold_dbfs:
        return None
    shown = "-inf" if math.isinf(peak) else f"{peak:.1f}"
    return (
        f"no speech found in {audio.path.name} (peak {shown} dBFS, below the "
        f"{threshold_dbfs:g} dBFS silence threshold)"
    )
