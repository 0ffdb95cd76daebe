"""Reading recordings: WAV and FLAC through ``soundfile``, mixed to mono, resampled.

:func:`load_audio` is the one entry point. It returns an :class:`Audio` (a float32 waveform in
``[-1, 1]`` at the requested rate) or raises :class:`AudioError`, a ``ValueError`` whose
one-line message names the file and what was wrong with it (also a
:class:`rnnlab.errors.DataError`, so the command line reports it in one line, exit code 2):

- the file does not exist, is empty (0 bytes), is not audio, is corrupt or cannot be read;
- it decodes to no samples, or to samples that are NaN or infinite;
- it is longer than ``max_seconds`` (checked from the header, before decoding).

Conversions are not errors. A recording with several channels is mixed to mono (the mean of
the channels) and one at another rate is resampled with SciPy's polyphase resampler
(``scipy.signal.resample_poly``, a Kaiser-windowed FIR low-pass, so nothing above the new
Nyquist frequency aliases back). Each conversion is recorded as a one-line notice in
``Audio.notices``; with ``warn=True`` (the default) each notice is also issued as an
:class:`AudioConversionWarning`. Corpus loaders that convert thousands of files the same way
pass ``warn=False`` and summarize the notices themselves.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from rnnlab.errors import DataError

__all__ = [
    "Audio",
    "AudioConversionWarning",
    "AudioError",
    "load_audio",
    "resample",
    "to_mono",
]


class AudioError(DataError, ValueError):
    """A recording that cannot be used: missing, empty, not audio, corrupt, or too long.

    A :class:`~rnnlab.errors.DataError` (the command line prints its one-line message and
    exits with code 2) and a ``ValueError``.
    """


class AudioConversionWarning(UserWarning):
    """A recording was converted on loading (mixed to mono or resampled)."""


@dataclass(frozen=True)
class Audio:
    """A decoded recording.

    Attributes:
        samples: the waveform, float32 of shape ``(N,)``, nominally in ``[-1, 1]``.
        sample_rate: samples per second of ``samples``.
        path: the file it was read from.
        notices: one line per conversion applied on loading (empty when none was needed).
    """

    samples: Tensor
    sample_rate: int
    path: Path
    notices: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.samples.numel() / self.sample_rate


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Mix ``(N, channels)`` samples to ``(N,)`` by averaging the channels.

    Args:
        samples: array of shape ``(N,)`` (returned as is) or ``(N, C)``.

    Returns:
        Array of shape ``(N,)``.
    """
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ValueError(f"samples must be (N,) or (N, channels), got shape {samples.shape}")
    return samples.mean(axis=1, dtype=np.float64).astype(samples.dtype)


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a 1-D signal with ``scipy.signal.resample_poly`` (polyphase FIR filtering).

    The rate ratio is reduced to ``up / down`` by their greatest common divisor, so 44100 Hz
    to 16000 Hz runs as up 160, down 441. The output has ``ceil(N * up / down)`` samples.

    Args:
        samples: array of shape ``(N,)``.
        orig_rate: its sample rate in Hz.
        new_rate: the wanted sample rate in Hz.

    Returns:
        float32 array at ``new_rate``.

    Example:
        >>> import numpy as np
        >>> resample(np.zeros(8000, dtype=np.float32), 8000, 16000).shape
        (16000,)
    """
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    if orig_rate == new_rate:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(orig_rate, new_rate)
    out = resample_poly(samples.astype(np.float64), new_rate // g, orig_rate // g)
    return np.asarray(out, dtype=np.float32)


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = None,
    *,
    max_seconds: float | None = None,
    warn: bool = True,
) -> Audio:
    """Read a WAV or FLAC file as a mono float32 waveform at ``sample_rate``.

    Args:
        path: the file.
        sample_rate: the rate to return, in Hz; ``None`` keeps the file's rate.
        max_seconds: longest duration accepted; a longer recording raises :class:`AudioError`.
        warn: also issue each conversion notice as an :class:`AudioConversionWarning`.

    Returns:
        The :class:`Audio`, with ``notices`` listing any conversion made.

    Raises:
        AudioError: the file is missing, empty, not audio, corrupt, silent of samples
            (0 frames), holds non-finite samples, or is longer than ``max_seconds``.

    Example:
        >>> audio = load_audio("0_jackson_0.wav", sample_rate=16000)  # doctest: +SKIP
        >>> audio.samples.shape, audio.notices  # doctest: +SKIP
        (torch.Size([10296]), ('0_jackson_0.wav: resampled from 8000 Hz to 16000 Hz',))
    """
    import soundfile as sf

    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    file = Path(path)
    if not file.is_file():
        raise AudioError(f"{file}: no such audio file")
    if file.stat().st_size == 0:
        raise AudioError(f"{file}: the file is empty (0 bytes)")
    container = audio_container(file)
    if container is None:
        raise AudioError(f"{file}: not a readable audio file (no WAV, FLAC, Ogg or AIFF header)")
    if container.startswith("wav"):
        tag = wav_format_tag(file)
        if tag is not None and tag not in WAV_CODECS:
            raise AudioError(
                f"{file}: not a readable audio file (WAV codec 0x{tag:04x}; rnnlab reads PCM, "
                "float, A-law, mu-law, ADPCM and GSM WAV, and FLAC)"
            )
    try:
        info = sf.info(str(file))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{file}: not a readable audio file ({_short(exc)})") from exc
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"{file}: bad header ({info.channels} channels at {info.samplerate} Hz)")
    header_seconds = info.frames / info.samplerate
    if max_seconds is not None and header_seconds > max_seconds:
        raise AudioError(
            f"{file}: recording is {header_seconds:.3f} s long, more than max_seconds={max_seconds}"
        )
    try:
        data, rate = sf.read(str(file), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{file}: corrupt audio data ({_short(exc)})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{file}: the recording has no samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{file}: the recording holds NaN or infinite samples")
    notices: list[str] = []
    channels = data.shape[1]
    mono = to_mono(data) if channels > 1 else data[:, 0]
    if channels > 1:
        notices.append(f"{file.name}: mixed {channels} channels to mono")
    target = rate if sample_rate is None else int(sample_rate)
    if target != rate:
        mono = resample(mono, rate, target)
        notices.append(f"{file.name}: resampled from {rate} Hz to {target} Hz")
    if warn:
        for notice in notices:
            warnings.warn(notice, AudioConversionWarning, stacklevel=2)
    samples = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))  # (N,)
    return Audio(samples=samples, sample_rate=target, path=file, notices=tuple(notices))


CONTAINERS = {
    "wav": ((0, b"RIFF"), (8, b"WAVE")),
    "wav (big-endian)": ((0, b"RIFX"), (8, b"WAVE")),
    "wav (rf64)": ((0, b"RF64"), (8, b"WAVE")),
    "flac": ((0, b"fLaC"),),
    "ogg": ((0, b"OggS"),),
    "aiff": ((0, b"FORM"), (8, b"AIFF")),
    "aiff-c": ((0, b"FORM"), (8, b"AIFC")),
}
"""The containers rnnlab hands to libsndfile, by their magic bytes (offset, bytes). Anything
else is refused before libsndfile sees it: given bytes it cannot place, libsndfile tries its
MPEG decoder, which crafted files were seen to crash (a segfault of the whole process)."""


def audio_container(path: str | os.PathLike[str]) -> str | None:
    """The container :data:`CONTAINERS` names for the file's first bytes, else ``None``.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.wav"
        >>> _ = p.write_bytes(b"RIFF" + bytes(4) + b"WAVEfmt ")
        >>> audio_container(p)
        'wav'
    """
    with open(path, "rb") as handle:
        head = handle.read(12)
    for name, marks in CONTAINERS.items():
        if all(head[at : at + len(mark)] == mark for at, mark in marks):
            return name
    return None


WAV_CODECS = frozenset({0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031})
"""WAV format tags handed to libsndfile: PCM, MS ADPCM, IEEE float, A-law, mu-law, IMA
ADPCM, GSM 6.10. MPEG inside WAV (0x0050, 0x0055) would reach the MPEG decoder (see
:data:`CONTAINERS`)."""

_EXTENSIBLE = 0xFFFE


def wav_format_tag(path: str | os.PathLike[str], limit: int = 1 << 16) -> int | None:
    """The codec tag of a WAV file's ``fmt`` chunk (the sub-format's for
    WAVE_FORMAT_EXTENSIBLE), or ``None`` when no ``fmt`` chunk is found in the first
    ``limit`` bytes (libsndfile then refuses the file itself).

    Example:
        >>> import tempfile, pathlib, numpy as np, soundfile as sf
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.wav"
        >>> sf.write(p, np.zeros(8, dtype=np.float32), 8000, subtype="PCM_16")
        >>> wav_format_tag(p)
        1
    """
    with open(path, "rb") as handle:
        data = handle.read(limit)
    order: Literal["little", "big"] = "big" if data[:4] == b"RIFX" else "little"
    at = 12
    while at + 8 <= len(data):
        name, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], order)
        if name == b"fmt ":
            body = data[at + 8 : at + 8 + size]
            if len(body) < 2:
                return None
            tag = int.from_bytes(body[:2], order)
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = int.from_bytes(body[24:26], order)  # the sub-format GUID's first two bytes
            return tag
        at += 8 + size + (size & 1)  # chunks are padded to an even size
    return None


def _short(exc: BaseException) -> str:
    """The first line of an exception's message, without libsndfile's path repetition."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
