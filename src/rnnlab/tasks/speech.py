r"""Speech tasks: spoken-digit classification and connected-digit recognition with CTC.

Two registered tasks read recorded speech (the Free Spoken Digit Dataset, FSDD) or a tiny
generated corpus of tones standing in for words (``data.source = "tones"``, for tests and
smoke runs: word ``k`` is a sine of its own pitch):

- ``speech-digits``: one recording -> one of the digits. Loss: cross-entropy; metrics
  ``accuracy``; at the test evaluation a confusion matrix (``plots/confusion.png`` and
  ``confusion.json`` in the run directory, or :func:`write_confusion_matrix` afterwards).
- ``speech-ctc``: utterances of ``min_digits..max_digits`` digits of one speaker joined with
  random silences (``rnnlab.data.fsdd.build_connected_digits``; train utterances from train
  recordings, test utterances from test recordings only) -> the digit words. Loss: CTC over
  word tokens (``unit = "word"``: class ``d + 1`` is digit ``d``, blank 0) or characters
  (``unit = "char"``: the letters of the words and the space). Metrics ``wer`` and ``cer``
  of greedy decoding; ``wer_beam`` and ``cer_beam`` of prefix beam search at the test
  evaluation (and at every validation with ``beam_on_valid``).

Data flow (features are computed once per data build and kept in memory; augmentation is
drawn per training batch from ``(train.seed, epoch, batch)``, so a resumed run sees the same
batches, and never touches valid or test)::

    WAV files --load_audio (mono, resampled to features.sample_rate)--> waveforms
      --FeatureExtractor (MFCC or log-mel, deltas, per-utterance CMVN)--> (T, F) per utterance
    train batch: [noise at snr -> features again] -> SpecAugment -> pad
      -> features (B, T_max, F), frames (B,), labels (B,)            speech-digits
      -> features (B, T_max, F), frames (B,), targets (B, S_max), target_lengths (B,)  speech-ctc

Config (the defaults suit FSDD at 8 kHz)::

    [task]
    name = "speech-digits"          # or "speech-ctc"

    [data]
    source = "fsdd"                 # or "tones" (generated, no files)
    valid_indices = [5, 6, 7, 8, 9] # FSDD recording indices moved from train to valid
    max_seconds = 10.0              # longer recordings are errors (also in `recognize`)
    [data.features]                 # rnnlab.data.audio.FeatureConfig
    kind = "mfcc"                   # n_mfcc = 13, deltas = 2 -> 39 features per frame
    [data.augment]
    freq_masks = 2                  # SpecAugment; 0 masks = off
    noise_snr_db = [10.0, 30.0]     # additive white noise; omit for none

The run directory gets ``features.json`` (the feature settings, also in ``config.toml``) and
``vocabulary.json`` (CTC) when the run directory is handed to the task
(:meth:`SpeechTask.prepare_run_dir`, which also makes the test evaluation write the confusion
matrix there), or from :meth:`SpeechTask.write_run_files`. :func:`load_recognizer` rebuilds
a trained model from a run directory for ``rnnlab recognize``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from rnnlab.config import DataConfig, ExperimentConfig, Section
from rnnlab.data.audio import (
    AudioConversionWarning,
    FeatureConfig,
    FeatureExtractor,
    add_noise,
    load_audio,
    spec_augment,
)
from rnnlab.data.fsdd import (
    DIGIT_WORDS,
    FSDD_SAMPLE_RATE,
    Recording,
    build_connected_digits,
    list_recordings,
    split_recordings,
)
from rnnlab.errors import ConfigError, DataError, RunDirError
from rnnlab.io import atomic_write, atomic_write_text
from rnnlab.models import (
    ClassificationHead,
    SequenceModel,
    build_encoder,
    build_recurrent,
    init_uniform_,
)
from rnnlab.models.speech import CTCHead
from rnnlab.speech.ctc import TokenSpan
from rnnlab.tasks.base import DataSpec, Task, TaskData, model_device, register_task
from rnnlab.training.loader import ShuffledBatches

__all__ = [
    "AugmentSettings",
    "FeatureSettings",
    "Recognizer",
    "SpeechCTCData",
    "SpeechCTCTask",
    "SpeechDigitsData",
    "SpeechDigitsTask",
    "SpeechTask",
    "ToneSettings",
    "Utterance",
    "UtteranceBatches",
    "Vocabulary",
    "load_recognizer",
    "plot_confusion_matrix",
    "recognize",
    "tone_word",
    "word_times",
    "write_confusion_matrix",
]

BLANK = 0


# ----------------------------------------------------------------------------- settings


class FeatureSettings(Section):
    """``[data.features]``: the feature pipeline (see :class:`rnnlab.data.audio.FeatureConfig`).

    Attributes:
        sample_rate: recordings are resampled to this rate (Hz) on loading.
        kind: ``mfcc`` or ``logmel``.
        n_mfcc, n_mels: cepstra kept and mel filters.
        window_ms, hop_ms: analysis window and hop (the hop is the frame period of the
            model and of CTC word times).
        deltas: 0, 1 (deltas) or 2 (deltas and delta-deltas) appended.
        pre_emphasis: coefficient, or ``None`` for none.
        normalize: per-utterance mean and variance normalization.
    """

    sample_rate: int = Field(default=FSDD_SAMPLE_RATE, gt=0)
    kind: Literal["mfcc", "logmel"] = "mfcc"
    n_mfcc: int = Field(default=13, gt=0)
    n_mels: int = Field(default=40, gt=0)
    window_ms: float = Field(default=25.0, gt=0.0)
    hop_ms: float = Field(default=10.0, gt=0.0)
    deltas: int = Field(default=2, ge=0, le=2)
    pre_emphasis: float | None = 0.97
    normalize: bool = True

    @model_validator(mode="after")
    def _valid_pipeline(self) -> FeatureSettings:
        try:
            self.feature_config()
        except ValueError as err:
            raise ValueError(str(err)) from None
        return self

    def feature_config(self) -> FeatureConfig:
        """The :class:`FeatureConfig` these settings describe."""
        return FeatureConfig(
            sample_rate=self.sample_rate,
            kind=self.kind,
            n_mfcc=self.n_mfcc,
            n_mels=self.n_mels,
            window_ms=self.window_ms,
            hop_ms=self.hop_ms,
            deltas=self.deltas,
            pre_emphasis=self.pre_emphasis,
            normalize=self.normalize,
        )


class AugmentSettings(Section):
    """``[data.augment]``: training-time augmentation (never applied to valid or test).

    Attributes:
        freq_masks, freq_width: SpecAugment frequency bands (count, widest in channels).
        time_masks, time_width: SpecAugment time spans (count, widest in frames).
        max_time_fraction: a time span covers at most this fraction of an utterance.
        noise_snr_db: ``[low, high]`` SNR in dB of white noise added to the waveform (drawn
            per utterance; features are then recomputed per batch); ``None`` for none.
    """

    freq_masks: int = Field(default=0, ge=0)
    freq_width: int = Field(default=4, ge=0)
    time_masks: int = Field(default=0, ge=0)
    time_width: int = Field(default=10, ge=0)
    max_time_fraction: float = Field(default=0.2, ge=0.0, le=1.0)
    noise_snr_db: tuple[float, float] | None = None

    @field_validator("noise_snr_db")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"must be [low, high] with low <= high, got {list(value)}")
        return value

    @property
    def masks(self) -> bool:
        """Whether SpecAugment masks anything."""
        return bool(self.freq_masks and self.freq_width) or bool(
            self.time_masks and self.time_width
        )


class ToneSettings(Section):
    """``[data.tones]``: the generated corpus used when ``data.source = "tones"``.

    Word ``k`` (standing in for digit ``k``) is a sine at ``400 + 300 k`` Hz under a smooth
    envelope, 0.12 to 0.3 s long, with faint noise (:func:`tone_word`).

    Attributes:
        words: number of words (digits ``0..words-1``).
        train_samples, valid_samples, test_samples: recordings per split.
        seed: split ``k`` (train, valid, test) is drawn with ``seed + k``.
    """

    words: int = Field(default=4, ge=2, le=10)
    train_samples: int = Field(default=96, gt=0)
    valid_samples: int = Field(default=32, gt=0)
    test_samples: int = Field(default=32, gt=0)
    seed: int = 0


class SpeechDataBase(DataConfig):
    """What both speech tasks share in ``[data]``.

    Attributes:
        source: ``fsdd`` (the named data set) or ``tones`` (generated).
        root: data root holding ``fsdd/``; default ``$RNNLAB_DATA``, then the cache.
        valid_indices: FSDD repetition indices moved from train to valid (never 0-4, the
            official test set).
        max_seconds: recordings longer than this are rejected.
        features, augment, tones: see :class:`FeatureSettings`, :class:`AugmentSettings`,
            :class:`ToneSettings`.
    """

    source: Literal["fsdd", "tones"] = "fsdd"
    root: str | None = None
    valid_indices: list[int] = Field(default_factory=lambda: [5, 6, 7, 8, 9])
    max_seconds: float = Field(default=10.0, gt=0.0)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    augment: AugmentSettings = Field(default_factory=AugmentSettings)
    tones: ToneSettings = Field(default_factory=ToneSettings)

    @field_validator("valid_indices")
    @classmethod
    def _not_test(cls, value: list[int]) -> list[int]:
        clash = sorted(set(value) & set(range(5)))
        if clash:
            raise ValueError(f"indices {clash} are FSDD test indices (0-4); use indices >= 5")
        if not value:
            raise ValueError("needs at least one index (a validation set)")
        return value


class SpeechDigitsData(SpeechDataBase):
    """``[data]`` of ``speech-digits`` (no fields beyond :class:`SpeechDataBase`)."""


class SpeechCTCData(SpeechDataBase):
    """``[data]`` of ``speech-ctc``.

    Attributes:
        unit: CTC tokens: ``word`` (one class per digit) or ``char`` (letters and space).
        train_utterances, valid_utterances, test_utterances: connected utterances per split.
        min_digits, max_digits: digits per utterance.
        silence_ms: ``[shortest, longest]`` silence before, between and after digits.
        seed: split ``k`` (train, valid, test) is built with ``seed + k``.
        beam_width: beam of the prefix beam search (``wer_beam``, ``cer_beam``).
        beam_on_valid: also beam-search at every validation (slower); else test only.
    """

    unit: Literal["word", "char"] = "word"
    train_utterances: int = Field(default=3000, gt=0)
    valid_utterances: int = Field(default=300, gt=0)
    test_utterances: int = Field(default=500, gt=0)
    min_digits: int = Field(default=1, ge=1)
    max_digits: int = Field(default=7, ge=1)
    silence_ms: tuple[float, float] = (50.0, 300.0)
    seed: int = 1234
    beam_width: int = Field(default=8, ge=1)
    beam_on_valid: bool = False

    @model_validator(mode="after")
    def _digit_range(self) -> SpeechCTCData:
        if self.min_digits > self.max_digits:
            raise ValueError(
                f"min_digits={self.min_digits} is more than max_digits={self.max_digits}"
            )
        low, high = self.silence_ms
        if not 0 <= low <= high:
            raise ValueError(
                f"silence_ms must be [low, high] with 0 <= low <= high, got {[low, high]}"
            )
        return self


# ---------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Vocabulary:
    """CTC tokens: class 0 is the blank, class ``i + 1`` is ``tokens[i]``.

    Attributes:
        unit: ``word`` or ``char``.
        tokens: the words, or the characters (the space included).
        words: the words the characters spell (for ``char``, the same as for ``word``).
    """

    unit: str
    tokens: tuple[str, ...]
    words: tuple[str, ...]

    @classmethod
    def for_words(cls, words: Sequence[str], unit: str) -> Vocabulary:
        """The vocabulary of ``words`` in units ``word`` or ``char``."""
        if unit == "word":
            return cls("word", tuple(words), tuple(words))
        if unit == "char":
            return cls("char", tuple(sorted({" ", *"".join(words)})), tuple(words))
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")

    @property
    def num_classes(self) -> int:
        """Tokens plus the blank."""
        return len(self.tokens) + 1

    def encode(self, digits: Sequence[int]) -> list[int]:
        """Class indices of a digit sequence (words, or characters with single spaces)."""
        if self.unit == "word":
            return [d + 1 for d in digits]
        text = " ".join(self.words[d] for d in digits)
        return [self.tokens.index(c) + 1 for c in text]

    def decode(self, classes: Sequence[int]) -> str:
        """Text of class indices (blanks already removed); spaces normalized."""
        if self.unit == "word":
            return " ".join(self.tokens[c - 1] for c in classes)
        return " ".join("".join(self.tokens[c - 1] for c in classes).split())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``vocabulary.json`` in the run directory)."""
        return {"unit": self.unit, "blank": BLANK, "tokens": list(self.tokens)}


# ------------------------------------------------------------------------------ the data


@dataclass
class Utterance:
    """One utterance in memory.

    Attributes:
        features: ``(T, F)`` features (computed once per data build).
        digits: the spoken digits (one for isolated words).
        waveform: the samples, kept only when training adds noise.
        speaker: who spoke it.
    """

    features: Tensor
    digits: tuple[int, ...]
    waveform: Tensor | None = None
    speaker: str = ""


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


def _tone_recordings(
    settings: ToneSettings, sample_rate: int
) -> tuple[dict[str, list[Recording]], dict[Path, Tensor]]:
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


def _fsdd_recordings(
    data: SpeechDataBase,
) -> tuple[dict[str, list[Recording]], dict[Path, Tensor]]:
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


def _pad(tensors: Sequence[Tensor], value: float = 0.0) -> Tensor:
    """Stack ``(T_i, ...)`` tensors into ``(B, T_max, ...)``, padding with ``value``."""
    return nn.utils.rnn.pad_sequence(list(tensors), batch_first=True, padding_value=value)


class UtteranceBatches(ShuffledBatches):
    """Padded batches of :class:`Utterance` s; implements the trainer's ``EpochLoader``.

    Augmentation (training loaders only) draws from a generator seeded by ``(seed, epoch,
    batch index, rank)``, so the batches of a resumed epoch equal the uninterrupted ones.

    A batch is ``(features (B, T, F), frames (B,), labels (B,))`` for classification, or
    ``(features, frames, targets (B, S), target_lengths (B,))`` with a ``vocabulary``.

    Args:
        utterances: the utterances.
        batch_size: the global batch size.
        shuffle, seed, drop_last: as in :class:`ShuffledBatches`.
        augment: the augmentation to apply; ``None`` for evaluation loaders.
        extractor: recomputes features from noisy waveforms (needed with noise).
        vocabulary: CTC targets from the digits; classification labels when ``None``.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        augment: AugmentSettings | None = None,
        extractor: FeatureExtractor | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        super().__init__(
            list(utterances),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            collate=self._plain,
        )
        if augment is not None and augment.noise_snr_db is not None and extractor is None:
            raise ValueError("noise augmentation needs the feature extractor")
        self.utterances = list(utterances)
        self.augment = augment
        self.extractor = extractor
        self.vocabulary = vocabulary

    def _plain(self, items: list[Utterance]) -> tuple[Tensor, ...]:
        return self.collate_batch(items, None)

    def batches(self, start: int = 0) -> Iterator[Any]:
        order = self.order()
        local = self.batch_size // self.world_size
        for index in range(start, len(self)):
            rows = order[index * self.batch_size : (index + 1) * self.batch_size]
            if self.world_size > 1:
                rows = rows[self.rank * local : (self.rank + 1) * local]
            generator = None
            if self.augment is not None:
                key = ((self.seed * 1_000_003 + self.epoch) * 100_003 + index) * 131 + self.rank
                generator = torch.Generator().manual_seed(key % 2**62)
            yield self.collate_batch([self.utterances[int(i)] for i in rows], generator)

    def collate_batch(
        self, items: list[Utterance], generator: torch.Generator | None
    ) -> tuple[Tensor, ...]:
        """Pad (and, with a generator and augmentation settings, augment) one batch."""
        aug = self.augment if generator is not None else None
        if aug is not None and aug.noise_snr_db is not None:
            waves = [u.waveform for u in items]
            if any(w is None for w in waves):
                raise ValueError("noise augmentation needs utterances with waveforms")
            samples = torch.tensor([w.numel() for w in waves if w is not None])
            padded = _pad([w for w in waves if w is not None])  # (B, N)
            noisy = add_noise(
                padded, aug.noise_snr_db, training=True, lengths=samples, generator=generator
            )
            assert self.extractor is not None  # checked in __init__
            with torch.no_grad():
                features, frames = self.extractor(noisy, samples)  # (B, T, F), (B,)
        else:
            features = _pad([u.features for u in items])  # (B, T, F)
            frames = torch.tensor([u.features.shape[0] for u in items], dtype=torch.long)
        if aug is not None and aug.masks:
            features = spec_augment(
                features,
                training=True,
                freq_masks=aug.freq_masks,
                freq_width=aug.freq_width,
                time_masks=aug.time_masks,
                time_width=aug.time_width,
                max_time_fraction=aug.max_time_fraction,
                lengths=frames,
                generator=generator,
            )
        if self.vocabulary is None:
            labels = torch.tensor([u.digits[0] for u in items], dtype=torch.long)
            return features, frames, labels
        encoded = [torch.tensor(self.vocabulary.encode(u.digits), dtype=torch.long) for u in items]
        target_lengths = torch.tensor([t.numel() for t in encoded], dtype=torch.long)
        return features, frames, _pad(encoded, BLANK).long(), target_lengths


def _features(
    extractor: FeatureExtractor, waves: Sequence[Tensor], batch: int = 64
) -> list[Tensor]:
    """Features of each waveform, computed in padded batches of similar lengths."""
    out: list[Tensor | None] = [None] * len(waves)
    order = sorted(range(len(waves)), key=lambda i: waves[i].numel())
    with torch.no_grad():
        for begin in range(0, len(order), batch):
            rows = order[begin : begin + batch]
            lengths = torch.tensor([waves[i].numel() for i in rows])
            feats, frames = extractor(_pad([waves[i] for i in rows]), lengths)
            for k, i in enumerate(rows):
                out[i] = feats[k, : int(frames[k])].clone()
    return [f for f in out if f is not None]


# ----------------------------------------------------------------------------- the tasks


class SpeechTask(Task):
    """What both speech tasks share: loading, features, run files, the model's input.

    Attributes:
        run_dir: the run directory, when the trainer (or a caller) sets it; test
            evaluations then write their plots and files there.
    """

    Data: ClassVar[type[DataConfig]] = SpeechDataBase
    run_dir: Path | None = None

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self._test_loader: Any = None
        self.extractor = FeatureExtractor(self.feature_config)

    @property
    def feature_config(self) -> FeatureConfig:
        """The feature pipeline of this run."""
        settings: FeatureSettings = self.data_config.features
        return settings.feature_config()

    @property
    def words(self) -> tuple[str, ...]:
        """The words the task recognizes: the ten digits, or the tone corpus' words."""
        data: SpeechDataBase = self.data_config
        count = data.tones.words if data.source == "tones" else len(DIGIT_WORDS)
        return DIGIT_WORDS[:count]

    def check_config(self) -> None:
        if self.config.train.seq_len is not None:
            raise ConfigError(
                f"train.seq_len={self.config.train.seq_len} is not used by task "
                f"{self.name!r}: each utterance is one sequence"
            )
        if self.config.model.embedding_size is not None:
            raise ConfigError(
                f"model.embedding_size is for token inputs; task {self.name!r} reads "
                "real-valued features (use model.input_projection)"
            )

    @abstractmethod
    def spec(self) -> DataSpec:
        """The :class:`DataSpec`, from the config alone (no data needed)."""

    def recordings(self) -> tuple[dict[str, list[Recording]], dict[Path, Tensor]]:
        """Recordings per split and their waveforms (FSDD files or generated tones)."""
        data: SpeechDataBase = self.data_config
        if data.source == "tones":
            return _tone_recordings(data.tones, data.features.sample_rate)
        return _fsdd_recordings(data)

    def prepare_run_dir(self, run_dir: str | os.PathLike[str], resume: bool = False) -> None:
        """Adopt ``run_dir`` as this run's directory and write the run files into it.

        After this, the test evaluation writes its plots and files there too. (The same
        files come from :meth:`write_run_files`; ``resume`` rewrites them unchanged.)
        """
        self.run_dir = Path(run_dir)
        self.write_run_files(self.run_dir)

    def write_run_files(self, run_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``features.json`` (and ``vocabulary.json`` for CTC) into ``run_dir``."""
        folder = Path(run_dir)
        settings = self.data_config.features.model_dump(mode="json")
        payload = {"features": settings, "words": list(self.words)}
        return [atomic_write_text(folder / "features.json", json.dumps(payload, indent=2) + "\n")]

    def build_model(self, spec: DataSpec) -> nn.Module:
        cfg = self.config.model
        encoder, input_size = build_encoder(cfg, spec.num_features, None)
        recurrent = build_recurrent(cfg, input_size)
        model = SequenceModel(encoder, recurrent, nn.Module())
        model.head = self._head(model.output_size(), spec)
        if cfg.init_range is not None:
            init_uniform_(model, cfg.init_range)
        return model

    @abstractmethod
    def _head(self, in_features: int, spec: DataSpec) -> nn.Module:
        """The output layer on top of the recurrent outputs (``D*H = in_features``)."""

    def _after_build(self) -> None:
        if self.run_dir is not None:
            self.write_run_files(self.run_dir)

    def _augmentation(self) -> AugmentSettings | None:
        aug: AugmentSettings = self.data_config.augment
        return aug if (aug.masks or aug.noise_snr_db is not None) else None


@register_task("speech-digits")
class SpeechDigitsTask(SpeechTask):
    """Isolated spoken digits: features ``(B, T, F)`` with frames -> logits over the digits.

    Metrics: ``loss`` (cross-entropy, nats), ``accuracy``. The confusion matrix of the last
    evaluation is kept in :attr:`confusion` (``(true, predicted)`` counts).
    """

    Data = SpeechDigitsData
    unit = "samples"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self.confusion: Tensor | None = None

    def spec(self) -> DataSpec:
        return DataSpec(num_features=self.feature_config.num_features, num_classes=len(self.words))

    def _head(self, in_features: int, spec: DataSpec) -> nn.Module:
        return ClassificationHead(in_features, spec.num_classes or 2, self.config.model.pooling)

    def build_data(self) -> TaskData:
        parts, waves = self.recordings()
        noisy = self.data_config.augment.noise_snr_db is not None
        splits: dict[str, list[Utterance]] = {}
        for name, recs in parts.items():
            keep = noisy and name == "train"
            feats = _features(self.extractor, [waves[r.path] for r in recs])
            splits[name] = [
                Utterance(
                    f, (r.digit,), waves[r.path] if keep and name == "train" else None, r.speaker
                )
                for r, f in zip(recs, feats, strict=True)
            ]
        batch = self.config.train.batch_size
        train = UtteranceBatches(
            splits["train"],
            batch,
            seed=self.config.train.seed,
            augment=self._augmentation(),
            extractor=self.extractor,
        )
        valid = UtteranceBatches(splits["valid"], batch, shuffle=False, drop_last=False)
        test = UtteranceBatches(splits["test"], batch, shuffle=False, drop_last=False)
        self._test_loader = test
        self._after_build()
        return TaskData(train=train, valid=valid, test=test, spec=self.spec())

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float | Tensor]]:
        features, frames, labels = batch  # (B, T, F), (B,), (B,)
        logits, _ = model(features, frames.cpu())  # (B, C)
        loss = F.cross_entropy(logits.float(), labels)
        correct = (logits.argmax(dim=-1) == labels).float().mean()
        return loss, None, {"count": float(labels.shape[0]), "accuracy": correct.detach()}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        device = model_device(model)
        classes = len(self.words)
        confusion = torch.zeros(classes, classes, dtype=torch.long)
        total = 0.0
        count = 0
        for batch in loader:
            features, frames, labels = self.to_device(batch, device)
            logits, _ = model(features, frames.cpu())  # (B, C)
            total += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
            predicted = logits.argmax(dim=-1).cpu()
            confusion.index_put_(
                (labels.cpu(), predicted), torch.ones_like(predicted), accumulate=True
            )
            count += labels.shape[0]
        if count == 0:
            raise DataError(f"task {self.name!r}: nothing to evaluate (empty split)")
        self.confusion = confusion
        if loader is self._test_loader and self.run_dir is not None:
            write_confusion_files(confusion, self.words, self.run_dir)
        return {"loss": total / count, "accuracy": float(confusion.trace()) / count}


@register_task("speech-ctc")
class SpeechCTCTask(SpeechTask):
    """Connected digits with CTC: features ``(B, T, F)`` -> per-frame log-probabilities.

    Metrics: ``loss`` (CTC, nats per target token as ``F.ctc_loss`` averages), ``wer`` and
    ``cer`` (greedy decoding), ``sentence_accuracy`` (greedy, whole utterance right), and
    ``wer_beam``/``cer_beam`` (prefix beam search of ``data.beam_width``) on the test split
    (every split with ``data.beam_on_valid``).
    """

    Data = SpeechCTCData
    unit = "samples"

    @property
    def vocabulary(self) -> Vocabulary:
        """The CTC tokens of this run."""
        return Vocabulary.for_words(self.words, self.data_config.unit)

    def spec(self) -> DataSpec:
        return DataSpec(
            num_features=self.feature_config.num_features,
            num_classes=self.vocabulary.num_classes,
            extra={"vocabulary": self.vocabulary.to_dict()},
        )

    def _head(self, in_features: int, spec: DataSpec) -> nn.Module:
        return CTCHead(in_features, spec.num_classes or 2, self.config.model.dropout)

    def write_run_files(self, run_dir: str | os.PathLike[str]) -> list[Path]:
        written = super().write_run_files(run_dir)
        text = json.dumps(self.vocabulary.to_dict(), indent=2) + "\n"
        written.append(atomic_write_text(Path(run_dir) / "vocabulary.json", text))
        return written

    def build_data(self) -> TaskData:
        data: SpeechCTCData = self.data_config
        parts, waves = self.recordings()
        sizes = {
            "train": data.train_utterances,
            "valid": data.valid_utterances,
            "test": data.test_utterances,
        }
        keep = data.augment.noise_snr_db is not None
        splits: dict[str, list[Utterance]] = {}
        for offset, (name, count) in enumerate(sizes.items()):
            try:
                utterances = build_connected_digits(
                    parts[name],
                    count,
                    seed=data.seed + offset,
                    min_digits=data.min_digits,
                    max_digits=data.max_digits,
                    silence_ms=data.silence_ms,
                    sample_rate=data.features.sample_rate,
                    loader=waves.__getitem__,
                )
            except ValueError as err:
                raise DataError(f"connected digits ({name}): {err}") from None
            feats = _features(self.extractor, [u.samples for u in utterances], batch=32)
            splits[name] = [
                Utterance(f, u.digits, u.samples if keep and name == "train" else None, u.speaker)
                for u, f in zip(utterances, feats, strict=True)
            ]
        batch = self.config.train.batch_size
        vocab = self.vocabulary
        train = UtteranceBatches(
            splits["train"],
            batch,
            seed=self.config.train.seed,
            augment=self._augmentation(),
            extractor=self.extractor,
            vocabulary=vocab,
        )
        valid = UtteranceBatches(
            splits["valid"], batch, shuffle=False, drop_last=False, vocabulary=vocab
        )
        test = UtteranceBatches(
            splits["test"], batch, shuffle=False, drop_last=False, vocabulary=vocab
        )
        self._test_loader = test
        self._after_build()
        return TaskData(train=train, valid=valid, test=test, spec=self.spec())

    @staticmethod
    def ctc_loss(
        log_probs: Tensor,
        frames: Tensor,
        targets: Tensor,
        target_lengths: Tensor,
        reduction: Literal["mean", "none"] = "mean",
    ) -> Tensor:
        """CTC loss of ``(B, T, C)`` log-probabilities (blank 0; infeasible targets give 0).

        ``"mean"``: the mean over the batch of each utterance's loss divided by its target
        length (``F.ctc_loss``'s mean); ``"none"``: ``(B,)`` losses, not divided.
        """
        return F.ctc_loss(
            log_probs.float().transpose(0, 1),  # (T, B, C)
            targets,
            frames,
            target_lengths,
            blank=BLANK,
            reduction=reduction,
            zero_infinity=True,
        )

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float]]:
        features, frames, targets, target_lengths = batch
        log_probs, _ = model(features, frames.cpu())  # (B, T, C)
        loss = self.ctc_loss(log_probs, frames, targets, target_lengths)
        return loss, None, {"count": float(features.shape[0])}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        from rnnlab.speech import character_error_rate, decode_batch, word_error_rate

        data: SpeechCTCData = self.data_config
        vocab = self.vocabulary
        beam = loader is self._test_loader or data.beam_on_valid
        device = model_device(model)
        total = 0.0
        refs: list[str] = []
        greedy: list[str] = []
        beamed: list[str] = []
        for batch in loader:
            features, frames, targets, target_lengths = self.to_device(batch, device)
            log_probs, _ = model(features, frames.cpu())  # (B, T, C)
            losses = self.ctc_loss(log_probs, frames, targets, target_lengths, reduction="none")
            total += float((losses / target_lengths.clamp(min=1)).sum())
            cpu_lp, cpu_frames = log_probs.float().cpu(), frames.cpu()
            for row, length in enumerate(target_lengths.cpu().tolist()):
                refs.append(vocab.decode(targets[row, :length].cpu().tolist()))
            greedy += [vocab.decode(h.tokens) for h in decode_batch(cpu_lp, cpu_frames)]
            if beam:
                hyps = decode_batch(cpu_lp, cpu_frames, beam_width=data.beam_width)
                beamed += [vocab.decode(h.tokens) for h in hyps]
        if not refs:
            raise DataError(f"task {self.name!r}: nothing to evaluate (empty split)")
        metrics = {
            "loss": total / len(refs),  # the training loss's scale (see ctc_loss)
            "wer": word_error_rate(refs, greedy),
            "cer": character_error_rate(refs, greedy),
            "sentence_accuracy": sum(r == h for r, h in zip(refs, greedy, strict=True)) / len(refs),
        }
        if beam:
            metrics["wer_beam"] = word_error_rate(refs, beamed)
            metrics["cer_beam"] = character_error_rate(refs, beamed)
        return metrics


# ----------------------------------------------------------------------- confusion matrix


def plot_confusion_matrix(
    confusion: Tensor, labels: Sequence[str], path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Draw a confusion matrix (rows: true class, columns: predicted) to a PNG, atomically.

    Args:
        confusion: ``(C, C)`` counts.
        labels: the class names.
        path: the PNG to write (its folder is created).
        title: the figure title (default: the accuracy).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = confusion.to(torch.long)
    if counts.dim() != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(labels):
        raise ValueError(
            f"confusion must be ({len(labels)}, {len(labels)}) for {len(labels)} labels, "
            f"got {tuple(counts.shape)}"
        )
    total = int(counts.sum())
    accuracy = float(counts.trace()) / total if total else float("nan")
    fig = Figure(figsize=(1.0 + 0.55 * len(labels), 0.8 + 0.55 * len(labels)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(counts.numpy(), cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {accuracy:.2%} ({total} recordings)")
    top = int(counts.max()) if total else 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            value = int(counts[i, j])
            if value:
                color = "white" if value > top / 2 else "black"
                ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=8)
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))


def write_confusion_files(
    confusion: Tensor, labels: Sequence[str], run_dir: str | os.PathLike[str]
) -> list[Path]:
    """``plots/confusion.png`` and ``confusion.json`` (labels, counts) in ``run_dir``."""
    folder = Path(run_dir)
    payload = {"labels": list(labels), "counts": confusion.tolist()}
    return [
        plot_confusion_matrix(confusion, labels, folder / "plots" / "confusion.png"),
        atomic_write_text(folder / "confusion.json", json.dumps(payload) + "\n"),
    ]


def write_confusion_matrix(
    run_dir: str | os.PathLike[str], split: Literal["valid", "test"] = "test"
) -> Path:
    """Evaluate a finished ``speech-digits`` run and write its confusion matrix.

    Writes ``plots/confusion.png`` (``plots/confusion-valid.png`` for the valid split) and
    ``confusion.json`` (test only) in the run directory.

    Returns:
        The PNG written.

    Raises:
        RunDirError: not a run directory of task ``speech-digits``.
    """
    recognizer = load_recognizer(run_dir)
    task = recognizer.task
    if not isinstance(task, SpeechDigitsTask):
        raise RunDirError(f"{run_dir}: task {task.name!r} has no confusion matrix")
    data = task.build_data()
    loader = data.test if split == "test" else data.valid
    if loader is None:
        raise RunDirError(f"{run_dir}: no {split} split")
    task.evaluate(recognizer.model, loader)
    assert task.confusion is not None  # set by evaluate
    folder = Path(run_dir)
    if split == "test":
        return write_confusion_files(task.confusion, task.words, folder)[0]
    return plot_confusion_matrix(
        task.confusion, task.words, folder / "plots" / "confusion-valid.png"
    )


# ----------------------------------------------------------------------------- inference


@dataclass
class Recognizer:
    """A trained speech model with its feature pipeline, ready for new recordings.

    Attributes:
        task: the run's task (``speech-digits`` or ``speech-ctc``).
        model: the model in eval mode.
        extractor: the run's feature extractor.
        run_dir: where it was loaded from.
        max_seconds: longer recordings are rejected.
    """

    task: SpeechTask
    model: nn.Module
    extractor: FeatureExtractor
    run_dir: Path
    max_seconds: float
    notices: list[str] = field(default_factory=list)

    @property
    def frame_seconds(self) -> float:
        """Seconds between feature frames (the hop)."""
        cfg = self.extractor.config
        return cfg.hop_length / cfg.sample_rate

    @torch.no_grad()
    def recognize_file(self, path: str | os.PathLike[str], beam_width: int = 1) -> dict[str, Any]:
        """Recognize one recording.

        Args:
            path: a WAV or FLAC file (converted to the run's rate and to mono, with notices).
            beam_width: CTC beam (1: greedy decoding); ignored by ``speech-digits``.

        Returns:
            For ``speech-digits``: ``{"file", "digit", "word", "confidence", "notices"}``;
            for ``speech-ctc``: ``{"file", "transcript", "digits", "log_prob", "words":
            [{"word", "start", "end"}], "notices"}`` (times in seconds from the alignment).

        Raises:
            AudioError: the file is missing, empty, not audio, or too long.
        """
        if beam_width < 1:
            raise ValueError(f"beam width must be >= 1, got {beam_width}")
        cfg = self.extractor.config
        audio = load_audio(path, cfg.sample_rate, max_seconds=self.max_seconds, warn=False)
        features, frames = self.extractor(audio.samples)  # (T, F), ()
        device = model_device(self.model)
        x = features.unsqueeze(0).to(device)  # (1, T, F)
        lengths = frames.reshape(1)
        output, _ = self.model(x, lengths)
        result: dict[str, Any] = {"file": str(path), "seconds": round(audio.seconds, 4)}
        if isinstance(self.task, SpeechCTCTask):
            result.update(self._transcribe(output[0].float().cpu(), beam_width))
        else:
            probs = torch.softmax(output[0].float(), dim=-1).cpu()  # (C,)
            digit = int(probs.argmax())
            result.update(
                {"digit": digit, "word": self.task.words[digit], "confidence": float(probs[digit])}
            )
        result["notices"] = list(audio.notices)
        return result

    def _transcribe(self, log_probs: Tensor, beam_width: int) -> dict[str, Any]:
        from rnnlab.speech import ctc_align, ctc_beam_search, ctc_greedy_decode

        assert isinstance(self.task, SpeechCTCTask)
        vocab = self.task.vocabulary
        if beam_width == 1:
            hyp = ctc_greedy_decode(log_probs, BLANK)
            spans = list(hyp.spans)
        else:
            hyp = ctc_beam_search(log_probs, beam_width, BLANK)[0]
            spans = list(hyp.spans) or ctc_align(log_probs, hyp.tokens, BLANK)
        words = word_times(spans, vocab, self.frame_seconds)
        transcript = vocab.decode(hyp.tokens)
        digits = [vocab.words.index(w) for w in transcript.split() if w in vocab.words]
        return {
            "transcript": transcript,
            "digits": digits,
            "log_prob": float(hyp.log_prob),
            "words": words,
        }


def word_times(
    spans: Sequence[TokenSpan], vocab: Vocabulary, frame_seconds: float
) -> list[dict[str, Any]]:
    """Words with start and end times (seconds) from CTC token spans.

    Word tokens map one to one; characters are grouped into words at spaces, a word
    running from its first character's first frame to its last character's last frame.

    Example:
        >>> vocab = Vocabulary.for_words(["one", "two"], "word")
        >>> word_times([TokenSpan(2, 10, 12)], vocab, 0.01)
        [{'word': 'two', 'start': 0.1, 'end': 0.12}]
    """
    groups: list[list[TokenSpan]] = []
    if vocab.unit == "word":
        groups = [[span] for span in spans]
    else:
        current: list[TokenSpan] = []
        for span in spans:
            if vocab.tokens[span.token - 1] == " ":
                if current:
                    groups.append(current)
                current = []
            else:
                current.append(span)
        if current:
            groups.append(current)
    out = []
    for group in groups:
        text = "".join(vocab.tokens[s.token - 1] for s in group)
        start = round(group[0].seconds(frame_seconds)[0], 4)
        end = round(group[-1].seconds(frame_seconds)[1], 4)
        out.append({"word": text, "start": start, "end": end})
    return out


def load_recognizer(
    run_dir: str | os.PathLike[str],
    checkpoint: Literal["best", "last"] = "best",
    device: str = "cpu",
    max_seconds: float | None = None,
) -> Recognizer:
    """Rebuild a speech run's model and features from its directory.

    Args:
        run_dir: a run directory of ``speech-digits`` or ``speech-ctc`` (``config.toml``
            and ``checkpoints/best.pt`` or ``last.pt``).
        checkpoint: ``best`` (falls back to ``last``) or ``last``.
        device: where the model runs.
        max_seconds: the longest recording accepted (default the run's ``data.max_seconds``).

    Raises:
        RunDirError: not a run directory of a speech task.
        CheckpointError: the checkpoint is missing or does not fit.
    """
    from rnnlab import config as config_mod
    from rnnlab.tasks import TASKS
    from rnnlab.training.checkpoint import load_checkpoint, load_model_state

    folder = Path(run_dir)
    source = folder / "config.toml"
    if not source.is_file():
        raise RunDirError(f"{folder} is not a run directory: {source} does not exist")
    cfg = config_mod.load(source)
    task = TASKS.get(cfg.task.name)(cfg)
    if not isinstance(task, SpeechTask):
        raise RunDirError(
            f"{folder} is a run of task {cfg.task.name!r}, not a speech task "
            "(speech-digits, speech-ctc)"
        )
    path = folder / "checkpoints" / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.is_file():
        path = folder / "checkpoints" / "last.pt"
    payload = load_checkpoint(path)
    model = task.build_model(task.spec())
    load_model_state(model, payload["model"], path)
    model.to(torch.device(device)).eval()
    limit = max_seconds if max_seconds is not None else task.data_config.max_seconds
    if limit <= 0:
        raise ConfigError(f"max_seconds must be > 0, got {limit}")
    return Recognizer(task, model, task.extractor, folder, float(limit))


def recognize(
    run_dir: str | os.PathLike[str],
    files: Sequence[str | os.PathLike[str]],
    *,
    beam_width: int = 1,
    checkpoint: Literal["best", "last"] = "best",
    max_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Recognize recordings with a trained speech run; a bad file does not stop the batch.

    Args:
        run_dir: a ``speech-digits`` or ``speech-ctc`` run directory.
        files: WAV or FLAC files.
        beam_width: CTC prefix beam width (1: greedy); ignored for ``speech-digits``.
        checkpoint: ``best`` or ``last``.
        max_seconds: the longest recording accepted (default the run's ``data.max_seconds``).

    Returns:
        One dict per file, in order: :meth:`Recognizer.recognize_file`'s result, or
        ``{"file": ..., "error": "one-line message"}`` for a file that could not be used.

    Raises:
        RunDirError, CheckpointError: the run cannot be loaded.
        ConfigError: ``beam_width < 1``.
    """
    from rnnlab.data.audio import AudioError

    if beam_width < 1:
        raise ConfigError(f"beam width must be >= 1, got {beam_width}")
    recognizer = load_recognizer(run_dir, checkpoint, max_seconds=max_seconds)
    results: list[dict[str, Any]] = []
    for file in files:
        try:
            results.append(recognizer.recognize_file(file, beam_width))
        except AudioError as err:
            results.append({"file": str(file), "error": str(err)})
    return results
