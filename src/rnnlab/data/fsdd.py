"""Free Spoken Digit Dataset (FSDD): recordings, the official split, a connected-digit corpus.

FSDD holds 3,000 recordings of single spoken digits, 8 kHz mono 16-bit WAV, 6 speakers x 10
digits x 50 repetitions, named ``{digit}_{speaker}_{index}.wav``. This module works on a
directory of those files (the named-data-set registry, ``rnnlab.data.datasets``, finds or
fetches it); nothing here knows where the files live.

Split (:func:`split_recordings`): the FSDD README's official test set is index 0-4 of every
speaker and digit (300 files); the rest (index 5-49) is the training set. A validation set is
carved from training by index (5-9 by default, 300 files), so no recording is ever in two sets:

    index:  0 1 2 3 4 | 5 6 7 8 9 | 10 ... 49
            test       | valid     | train

Connected digits (:func:`build_connected_digits`): utterances of 1 to 7 digits made by joining
recordings of one speaker with short random silences, for CTC training. Built per split
(:func:`connected_digit_corpus`), so train utterances use train recordings only and test
utterances test recordings only. Each utterance keeps every digit's sample boundaries (the
span of the source recording, whose own leading and trailing silence it includes). The same
recordings and seed give the same corpus.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.data.audio import load_audio

__all__ = [
    "DIGIT_WORDS",
    "FSDD_SAMPLE_RATE",
    "TEST_INDICES",
    "ConnectedUtterance",
    "DigitSegment",
    "FsddSplit",
    "Recording",
    "build_connected_digits",
    "connected_digit_corpus",
    "list_recordings",
    "parse_recording_name",
    "split_recordings",
]

FSDD_SAMPLE_RATE = 8000
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEST_INDICES = range(0, 5)
DEFAULT_VALID_INDICES = range(5, 10)
_NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9-]+)_(?P<index>[0-9]+)\.wav$")


@dataclass(frozen=True, order=True)
class Recording:
    """One FSDD file.

    Attributes:
        speaker: the speaker's name (``jackson``, ``theo``...).
        digit: the spoken digit, 0-9.
        index: the repetition number (0-49 in FSDD).
        path: the WAV file.
    """

    speaker: str
    digit: int
    index: int
    path: Path


def parse_recording_name(path: str | os.PathLike[str]) -> Recording:
    """Read digit, speaker and index from a name ``{digit}_{speaker}_{index}.wav``.

    Raises:
        ValueError: the name does not follow that pattern.
    """
    file = Path(path)
    match = _NAME.match(file.name)
    if match is None:
        raise ValueError(
            f"{file}: not an FSDD recording name, expected {{digit}}_{{speaker}}_{{index}}.wav"
        )
    return Recording(match["speaker"], int(match["digit"]), int(match["index"]), file)


def list_recordings(root: str | os.PathLike[str]) -> list[Recording]:
    """All recordings under ``root`` (the folder of WAV files, or one holding ``recordings/``).

    Returns:
        Recordings sorted by speaker, digit and index.

    Raises:
        ValueError: the folder is missing, holds no WAV file, or a WAV file is misnamed.
    """
    folder = Path(root)
    if (folder / "recordings").is_dir():
        folder = folder / "recordings"
    if not folder.is_dir():
        raise ValueError(f"{folder}: FSDD folder does not exist")
    recordings = sorted(parse_recording_name(p) for p in folder.glob("*.wav"))
    if not recordings:
        raise ValueError(f"{folder}: no .wav recordings found")
    return recordings


@dataclass(frozen=True)
class FsddSplit:
    """Disjoint train, valid and test recordings."""

    train: tuple[Recording, ...]
    valid: tuple[Recording, ...]
    test: tuple[Recording, ...]

    def parts(self) -> dict[str, tuple[Recording, ...]]:
        """``{"train": ..., "valid": ..., "test": ...}``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}


def split_recordings(
    recordings: Iterable[Recording], valid_indices: Iterable[int] = DEFAULT_VALID_INDICES
) -> FsddSplit:
    """The official split (test: index 0-4) with a validation set carved from training.

    Args:
        recordings: the recordings, e.g. from :func:`list_recordings`.
        valid_indices: repetition indices moved from train to valid (5-9 by default; empty
            for no validation set). They may not include a test index.

    Returns:
        The :class:`FsddSplit`; every recording is in exactly one part.

    Example:
        >>> from pathlib import Path
        >>> recs = [Recording("s", 3, i, Path(f"3_s_{i}.wav")) for i in range(12)]
        >>> split = split_recordings(recs)
        >>> [len(part) for part in split.parts().values()]
        [2, 5, 5]
    """
    valid = set(valid_indices)
    clash = sorted(valid & set(TEST_INDICES))
    if clash:
        raise ValueError(f"valid_indices {clash} are test indices (0-4); choose indices >= 5")
    train_part, valid_part, test_part = [], [], []
    for rec in sorted(recordings):
        if rec.index in TEST_INDICES:
            test_part.append(rec)
        elif rec.index in valid:
            valid_part.append(rec)
        else:
            train_part.append(rec)
    return FsddSplit(tuple(train_part), tuple(valid_part), tuple(test_part))


# ---------------------------------------------------------------------- connected digits


@dataclass(frozen=True)
class DigitSegment:
    """Where one source recording sits in a connected utterance.

    Attributes:
        digit: the spoken digit.
        start: first sample of the recording in the utterance.
        end: one past its last sample.
        source: the source file's name.
    """

    digit: int
    start: int
    end: int
    source: str


@dataclass(frozen=True)
class ConnectedUtterance:
    """A sequence of one speaker's digits joined with silences.

    Attributes:
        samples: float32 waveform ``(N,)``.
        sample_rate: in Hz.
        speaker: the speaker of every digit.
        segments: one :class:`DigitSegment` per digit, in order.
    """

    samples: Tensor
    sample_rate: int
    speaker: str
    segments: tuple[DigitSegment, ...]

    @property
    def digits(self) -> tuple[int, ...]:
        """The spoken digits in order."""
        return tuple(s.digit for s in self.segments)

    @property
    def text(self) -> str:
        """The digits as words, ``"three one four"`` (a WER reference)."""
        return " ".join(DIGIT_WORDS[d] for d in self.digits)

    def boundaries(self) -> list[tuple[int, float, float]]:
        """``(digit, start_seconds, end_seconds)`` per digit."""
        rate = self.sample_rate
        return [(s.digit, s.start / rate, s.end / rate) for s in self.segments]


Loader = Callable[[Path], Tensor]


def build_connected_digits(
    recordings: Sequence[Recording],
    num_utterances: int,
    *,
    seed: int,
    min_digits: int = 1,
    max_digits: int = 7,
    silence_ms: tuple[float, float] = (50.0, 300.0),
    sample_rate: int = FSDD_SAMPLE_RATE,
    loader: Loader | None = None,
) -> list[ConnectedUtterance]:
    """Join recordings of one speaker into connected-digit utterances.

    Each utterance picks a speaker uniformly, a number of digits ``n`` uniformly in
    ``[min_digits, max_digits]``, and ``n`` distinct recordings of that speaker; it puts a
    silence of uniform random length in ``silence_ms`` before, between and after them::

        | sil | rec 1 | sil | rec 2 | ... | rec n | sil |

    Args:
        recordings: the pool (one split's recordings, so splits never share one).
        num_utterances: how many utterances to make.
        seed: the same pool and seed give the same corpus.
        min_digits: fewest digits per utterance (>= 1).
        max_digits: most digits per utterance.
        silence_ms: ``(shortest, longest)`` silence in milliseconds.
        sample_rate: rate of the output; recordings are resampled to it on loading.
        loader: reads a recording as a ``(N,)`` float tensor at ``sample_rate``; default
            :func:`rnnlab.data.audio.load_audio` (without warnings). Each file is read once.

    Returns:
        The utterances.

    Raises:
        ValueError: bad counts or silences, or a speaker with fewer than ``max_digits``
            recordings in the pool.
    """
    if num_utterances < 0:
        raise ValueError(f"num_utterances must be >= 0, got {num_utterances}")
    if not 1 <= min_digits <= max_digits:
        raise ValueError(f"need 1 <= min_digits <= max_digits, got {min_digits} and {max_digits}")
    low_ms, high_ms = silence_ms
    if not 0 <= low_ms <= high_ms:
        raise ValueError(f"silence_ms must be (low, high) with 0 <= low <= high, got {silence_ms}")
    by_speaker: dict[str, list[Recording]] = {}
    for rec in sorted(recordings):
        by_speaker.setdefault(rec.speaker, []).append(rec)
    if not by_speaker and num_utterances:
        raise ValueError("no recordings to build connected digits from")
    for speaker, recs in by_speaker.items():
        if len(recs) < max_digits:
            raise ValueError(
                f"speaker {speaker!r} has {len(recs)} recordings, "
                f"fewer than max_digits={max_digits}"
            )
    read = loader or (lambda path: load_audio(path, sample_rate, warn=False).samples)
    cache: dict[Path, Tensor] = {}

    def audio(rec: Recording) -> Tensor:
        if rec.path not in cache:
            cache[rec.path] = read(rec.path).to(torch.float32).reshape(-1)
        return cache[rec.path]

    rng = random.Random(seed)
    speakers = sorted(by_speaker)

    def silence() -> int:
        return round(rng.uniform(low_ms, high_ms) * sample_rate / 1000)

    utterances = []
    for _ in range(num_utterances):
        speaker = rng.choice(speakers)
        chosen = rng.sample(by_speaker[speaker], rng.randint(min_digits, max_digits))
        pieces: list[Tensor] = []
        segments: list[DigitSegment] = []
        position = 0
        for rec in chosen:
            gap = silence()
            pieces.append(torch.zeros(gap))
            position += gap
            wave = audio(rec)
            pieces.append(wave)
            segments.append(
                DigitSegment(rec.digit, position, position + wave.numel(), rec.path.name)
            )
            position += wave.numel()
        pieces.append(torch.zeros(silence()))
        utterances.append(
            ConnectedUtterance(torch.cat(pieces), sample_rate, speaker, tuple(segments))
        )
    return utterances


def connected_digit_corpus(
    split: FsddSplit,
    sizes: Mapping[str, int],
    *,
    seed: int,
    **options: object,
) -> dict[str, list[ConnectedUtterance]]:
    """Connected-digit utterances per split, each made from that split's recordings only.

    Args:
        split: the recordings, e.g. ``split_recordings(list_recordings(root))``.
        sizes: utterances per part, e.g. ``{"train": 2000, "valid": 200, "test": 200}``.
        seed: base seed; part ``train``, ``valid``, ``test`` uses ``seed + 0, 1, 2``.
        **options: passed to :func:`build_connected_digits` (digit counts, silences, rate,
            loader).

    Returns:
        ``{part: utterances}`` for each part named in ``sizes``.
    """
    parts = split.parts()
    offsets = {"train": 0, "valid": 1, "test": 2}
    out = {}
    for name, count in sizes.items():
        if name not in parts:
            raise ValueError(f"unknown split part {name!r}; expected one of {sorted(parts)}")
        out[name] = build_connected_digits(
            parts[name],
            count,
            seed=seed + offsets[name],
            **options,  # type: ignore[arg-type]
        )
    return out
