"""The ``[data]`` sections of the speech tasks: features, augmentation, the tone corpus.

:class:`SpeechDigitsData` (``speech-digits``) and :class:`SpeechCTCData` (``speech-ctc``)
share :class:`SpeechDataBase`; its ``[data.features]``, ``[data.augment]`` and
``[data.tones]`` tables are :class:`FeatureSettings`, :class:`AugmentSettings` and
:class:`ToneSettings`. The defaults suit FSDD at 8 kHz::

    [data]
    source = "fsdd"                 # or "tones" (generated, no files)
    valid_indices = [5, 6, 7, 8, 9] # FSDD recording indices moved from train to valid
    max_seconds = 10.0              # longer recordings are errors (also in `recognize`)
    [data.features]                 # rnnlab.data.audio.FeatureConfig
    kind = "mfcc"                   # n_mfcc = 13, deltas = 2 -> 39 features per frame
    trim_db = 40.0                  # trim leading/trailing silence; 0 = off
    loudness_dbfs = -23.0           # RMS level of every recording; 0 = off
    [data.augment]
    freq_masks = 2                  # SpecAugment; 0 masks = off
    noise_snr_db = [10.0, 30.0]     # additive white noise; omit for none
    speed = [0.9, 1.1]              # speed perturbation range; [1, 1] = off
    vtlp = [0.9, 1.1]               # vocal tract length perturbation; [1, 1] = off

Your own labelled audio (``speech-digits`` with ``source = "folder"`` or ``"manifest"``,
:mod:`rnnlab.speech.own_audio`)::

    [data]
    source = "folder"               # <path>/<label>/*.wav, or <path>/{train,valid,test}/<label>/
    path = "my_commands"            # the folder (or the CSV/TSV manifest for "manifest")
    valid_fraction = 0.1            # split when the data does not name one
    test_fraction = 0.1

A bad value is a one-line :class:`~rnnlab.errors.ConfigError` naming its key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from rnnlab.config import DataConfig, Section
from rnnlab.data.audio import FeatureConfig
from rnnlab.data.fsdd import FSDD_SAMPLE_RATE

__all__ = [
    "AugmentSettings",
    "FeatureSettings",
    "SpeechCTCData",
    "SpeechDataBase",
    "SpeechDigitsData",
    "ToneSettings",
]


class FeatureSettings(Section):
    """``[data.features]``: the feature pipeline (see :class:`rnnlab.data.audio.FeatureConfig`).

    Attributes:
        sample_rate: recordings are resampled to this rate (Hz) on loading.
        kind: ``mfcc`` or ``logmel``.
        n_mfcc, n_mels: cepstra kept and mel filters.
        window_ms, hop_ms: analysis window and hop (the hop is the frame period of the
            model and of CTC word times).
        deltas: 0, 1 (deltas) or 2 (deltas and delta-deltas) appended.
        pre_emphasis: coefficient in ``[0, 1)``; ``0`` for none (a number, not ``None``, so
            a run's saved ``config.toml`` reloads as it was trained: TOML has no null).
        normalize: per-utterance mean and variance normalization.
        trim_db: trim leading and trailing audio more than this many dB below the loudest
            10 ms frame, in training, evaluation and ``recognize`` alike; ``0`` for off.
        trim_margin_ms: audio kept on each side of the speech when trimming.
        loudness_dbfs: every recording is scaled to this RMS level (dBFS, negative);
            ``0`` for off.
    """

    sample_rate: int = Field(default=FSDD_SAMPLE_RATE, gt=0)
    kind: Literal["mfcc", "logmel"] = "mfcc"
    n_mfcc: int = Field(default=13, gt=0)
    n_mels: int = Field(default=40, gt=0)
    window_ms: float = Field(default=25.0, gt=0.0)
    hop_ms: float = Field(default=10.0, gt=0.0)
    deltas: int = Field(default=2, ge=0, le=2)
    pre_emphasis: float = Field(default=0.97, ge=0.0, lt=1.0)
    normalize: bool = True
    trim_db: float = Field(default=0.0, ge=0.0)
    trim_margin_ms: float = Field(default=30.0, ge=0.0)
    loudness_dbfs: float = Field(default=0.0, ge=-80.0, le=0.0)

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
            pre_emphasis=self.pre_emphasis or None,
            normalize=self.normalize,
            trim_db=self.trim_db or None,
            trim_margin_ms=self.trim_margin_ms,
            loudness_dbfs=self.loudness_dbfs or None,
        )


class AugmentSettings(Section):
    """``[data.augment]``: training-time augmentation (never applied to valid or test).

    Attributes:
        freq_masks, freq_width: SpecAugment frequency bands (count, widest in channels).
        time_masks, time_width: SpecAugment time spans (count, widest in frames).
        max_time_fraction: a time span covers at most this fraction of an utterance.
        noise_snr_db: ``[low, high]`` SNR in dB of white noise added to the waveform (drawn
            per utterance; features are then recomputed per batch); ``None`` for none.
        speed: ``[low, high]`` speed factors drawn per utterance (tempo and pitch scale
            together, :func:`~rnnlab.data.audio.speed_perturb`); ``[1, 1]`` for off.
        vtlp: ``[low, high]`` vocal tract length perturbation factors drawn per utterance
            (the mel filters read through a piecewise-linear frequency warp,
            :func:`~rnnlab.data.audio.vtlp_frequency`: formants move, tempo and duration do
            not); ``[1, 1]`` for off.
    """

    freq_masks: int = Field(default=0, ge=0)
    freq_width: int = Field(default=4, ge=0)
    time_masks: int = Field(default=0, ge=0)
    time_width: int = Field(default=10, ge=0)
    max_time_fraction: float = Field(default=0.2, ge=0.0, le=1.0)
    noise_snr_db: tuple[float, float] | None = None
    speed: tuple[float, float] = (1.0, 1.0)
    vtlp: tuple[float, float] = (1.0, 1.0)

    @field_validator("speed")
    @classmethod
    def _speeds(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.5 <= value[0] <= value[1] <= 2.0:
            raise ValueError(f"must be [low, high] with 0.5 <= low <= high <= 2, got {list(value)}")
        return value

    @field_validator("vtlp")
    @classmethod
    def _warps(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.7 <= value[0] <= value[1] <= 1.4:
            raise ValueError(
                f"must be [low, high] with 0.7 <= low <= high <= 1.4, got {list(value)}"
            )
        return value

    @property
    def waveform(self) -> bool:
        """Whether augmentation works on the waveform or its spectrum (noise, speed, VTLP),
        so features are recomputed per batch."""
        return self.noise_snr_db is not None or self.speed != (1.0, 1.0) or self.vtlp != (1.0, 1.0)

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
    """``[data]`` of ``speech-digits``: FSDD, tones, or your own labelled recordings.

    Attributes:
        source: also ``folder`` (labels from sub-folder names) or ``manifest`` (a CSV/TSV
            with columns path, label and optionally speaker and split), see
            :mod:`rnnlab.speech.own_audio`.
        path: the folder or the manifest (relative paths from the working directory).
        labels: the class names in order. Empty: the sorted labels found in the data; the
            run's saved ``config.toml`` then names them, so ``rnnlab recognize`` and
            :func:`rnnlab.load` print them.
        valid_fraction, test_fraction: shares of the recordings (of the speakers, when the
            data names speakers) held out when the data names no split.
        split_seed: seed of that split.
        path_column, label_column, speaker_column, split_column: the manifest's columns
            (speaker and split are optional: absent columns are not used).
        bad_files: a recording that cannot be used (empty, corrupt, not audio, silent,
            missing): ``skip`` it (counted in ``class_balance.json`` and one warning) or
            ``error`` (refuse the data set with one line naming the file).
    """

    source: Literal["fsdd", "tones", "folder", "manifest"] = "fsdd"  # type: ignore[assignment]
    path: str = ""
    labels: list[str] = Field(default_factory=list)
    valid_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    split_seed: int = 0
    path_column: str = "path"
    label_column: str = "label"
    speaker_column: str = "speaker"
    split_column: str = "split"
    bad_files: Literal["skip", "error"] = "skip"

    @model_validator(mode="after")
    def _own_audio(self) -> SpeechDigitsData:
        if self.source in ("folder", "manifest") and not self.path:
            raise ValueError(f'source = "{self.source}" needs data.path (the {self.source})')
        if self.valid_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"valid_fraction + test_fraction = {self.valid_fraction + self.test_fraction:g}"
                " leaves no training data; keep their sum below 1"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels has duplicates: {self.labels}")
        return self


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
