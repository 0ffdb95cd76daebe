"""The recordings a speech run reads: FSDD files, or generated tones standing in for words.

Both sources give the same thing: the :class:`~rnnlab.data.fsdd.Recording` s of each split
(``train``, ``valid``, ``test``) and their waveforms, converted once to the feature sample
rate. With ``data.source = "tones"`` (tests and smoke runs, no files) word ``k`` is a sine of
its own pitch (:func:`tone_word`); with ``data.source = "fsdd"`` the Free Spoken Digit
Dataset is located with :func:`rnnlab.data.datasets.locate` and split with its official test
set (:func:`~rnnlab.data.fsdd.split_recordings`).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.data.audio import AudioConversionWarning, load_audio
from rnnlab.data.fsdd import FSDD_SAMPLE_RATE, Recording, list_recordings, split_recordings
from rnnlab.errors import DataError
from rnnlab.speech.settings import SpeechDataBase, ToneSettings

__all__ = ["Recordings", "fsdd_recordings", "tone_recordings", "tone_word"]

Recordings = tuple[dict[str, list[Recording]], dict[Path, Tensor]]
"""Recordings per split (``train``, ``valid``, ``test``) and the waveform of each path."""


def tone_word(word: int, generator: torch.Generator, sample_rate: int = FSDD_SAMPLE_RATE) -> Tensor:
    """A generated "word": a sine at ``400 + 300 word`` Hz, 0.12-0.3 s, smooth envelope.

    Args:
        word: the word index (0-9).
        generator: source of the duration, amplitude, phase and noise.
        sample_rate: in Hz.

    Returns:
        float32 samples ``(N,)``.
    """
    u = torch.rand(3, generator=generator, dtype=torch.float64)
    seconds = 0.12 + 0.18 * float(u[0])
    size = max(16, round(seconds * sample_rate))
    t = torch.arange(size, dtype=torch.float64) / sample_rate
    ramp = torch.arange(size, dtype=torch.float64) / (size - 1)
    envelope = torch.sin(math.pi * ramp).clamp(min=0.0).sqrt()  # (N,), 0 at both ends
    pitch = 400.0 + 300.0 * word
    wave = (
        (0.3 + 0.5 * float(u[1]))
        * envelope
        * torch.sin(2 * math.pi * pitch * t + 2 * math.pi * float(u[2]))
    )
    noise = 0.01 * torch.randn(size, generator=generator, dtype=torch.float64)
    return (wave + noise).to(torch.float32)


def tone_recordings(settings: ToneSettings, sample_rate: int) -> Recordings:
    """Generated recordings per split, named like FSDD files, and their samples."""
    parts: dict[str, list[Recording]] = {}
    waves: dict[Path, Tensor] = {}
    sizes = {
        "train": settings.train_samples,
        "valid": settings.valid_samples,
        "test": settings.test_samples,
    }
    for offset, (part, count) in enumerate(sizes.items()):
        generator = torch.Generator().manual_seed(settings.seed + offset)
        recs = []
        for i in range(count):
            word = i % settings.words
            path = Path(f"{part}/{word}_tone_{i}.wav")
            recs.append(Recording("tone", word, i, path))
            waves[path] = tone_word(word, generator, sample_rate)
        parts[part] = recs
    return parts, waves


def fsdd_recordings(data: SpeechDataBase) -> Recordings:
    """FSDD recordings per split (official test set), loaded and converted once."""
    from rnnlab.data import datasets

    folder = datasets.locate("fsdd", data.root, verify=False)
    recordings = list_recordings(folder)
    split = split_recordings(recordings, data.valid_indices)
    rate = data.features.sample_rate
    waves: dict[Path, Tensor] = {}
    converted: list[str] = []
    for rec in recordings:
        audio = load_audio(rec.path, rate, max_seconds=data.max_seconds, warn=False)
        waves[rec.path] = audio.samples
        converted.extend(audio.notices)
    if converted:
        warnings.warn(
            f"{len(converted)} conversions on loading FSDD (e.g. {converted[0]})",
            AudioConversionWarning,
            stacklevel=3,
        )
    parts = {name: list(recs) for name, recs in split.parts().items()}
    for name, recs in parts.items():
        if not recs:
            raise DataError(f"FSDD in {folder}: the {name} split is empty")
    return parts, waves
