r"""What the two speech tasks share: their recordings, features, run files and model.

Two registered tasks read recorded speech (the Free Spoken Digit Dataset, FSDD) or a tiny
generated corpus of tones standing in for words (``data.source = "tones"``, for tests and
smoke runs: word ``k`` is a sine of its own pitch, :func:`rnnlab.speech.recordings.tone_word`):

- ``speech-digits`` (:class:`rnnlab.speech.digits.SpeechDigitsTask`): one recording -> one
  of the digits.
- ``speech-ctc`` (:class:`rnnlab.speech.ctc_task.SpeechCTCTask`): utterances of several
  digits joined with random silences -> the digit words, with CTC.

Data flow (features are computed once per data build and kept in memory; augmentation is
drawn per training batch, see :mod:`rnnlab.speech.batching`)::

    WAV files --load_audio (mono, resampled to features.sample_rate)--> waveforms
      --FeatureExtractor (MFCC or log-mel, deltas, per-utterance CMVN)--> (T, F) per utterance
      --UtteranceBatches--> padded (and, in training, augmented) batches
      --SequenceModel (encoder, recurrent stack, task head)--> logits or log-probs

The ``[data]`` sections are in :mod:`rnnlab.speech.settings`. The run directory gets
``features.json`` (the feature settings, also in ``config.toml``), ``vocabulary.json``
(CTC) and ``class_balance.json`` (own recordings, :mod:`rnnlab.speech.own_audio`) when
the run directory is handed to the task (:meth:`SpeechTask.prepare_run_dir`, which also
makes the test evaluation write the confusion matrix there), or from
:meth:`SpeechTask.write_run_files`. :func:`rnnlab.speech.recognize.load_recognizer` rebuilds
a trained model from a run directory for ``rnnlab recognize``.
"""

from __future__ import annotations

import json
import os
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from rnnlab.config import DataConfig, ExperimentConfig
from rnnlab.data.audio import FeatureConfig, FeatureExtractor
from rnnlab.data.fsdd import DIGIT_WORDS
from rnnlab.errors import ConfigError
from rnnlab.io import atomic_write_text
from rnnlab.models import build_sequence_model
from rnnlab.speech.own_audio import BalanceReport, own_recordings
from rnnlab.speech.recordings import Recordings, fsdd_recordings, tone_recordings
from rnnlab.speech.settings import (
    AugmentSettings,
    FeatureSettings,
    SpeechDataBase,
    SpeechDigitsData,
)
from rnnlab.tasks.base import DataSpec, Task

__all__ = ["SpeechTask"]


class SpeechTask(Task):
    """What both speech tasks share: loading, features, run files, the model's input.

    Attributes:
        run_dir: the run directory, when the trainer (or a caller) sets it; test
            evaluations then write their plots and files there.
    """

    Data: ClassVar[type[DataConfig]] = SpeechDataBase
    run_dir: Path | None = None
    balance: BalanceReport | None = None

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
        if data.source in ("folder", "manifest"):
            return tuple(getattr(data, "labels", ()))
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

    def recordings(self) -> Recordings:
        """Recordings per split and their waveforms (FSDD files or generated tones)."""
        data: SpeechDataBase = self.data_config
        if data.source == "tones":
            return tone_recordings(data.tones, data.features.sample_rate)
        if isinstance(data, SpeechDigitsData) and data.source in ("folder", "manifest"):
            parts, waves, report = own_recordings(data, self.feature_config)
            if not data.labels:  # saved in config.toml, so a reloaded run knows its classes
                data.labels = list(report.labels)
            self.balance = report
            print(f"class balance of {data.path}:\n{report.table()}")
            return parts, waves
        return fsdd_recordings(data)

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
        written = [
            atomic_write_text(folder / "features.json", json.dumps(payload, indent=2) + "\n")
        ]
        if self.balance is not None:
            text = json.dumps(self.balance.as_dict(), indent=2) + "\n"
            written.append(atomic_write_text(folder / "class_balance.json", text))
        return written

    def build_model(self, spec: DataSpec) -> nn.Module:
        return build_sequence_model(
            self.config.model, spec.num_features, None, lambda size: self._head(size, spec)
        )

    @abstractmethod
    def _head(self, in_features: int, spec: DataSpec) -> nn.Module:
        """The output layer on top of the recurrent outputs (``D*H = in_features``)."""

    def _after_build(self) -> None:
        if self.run_dir is not None:
            self.write_run_files(self.run_dir)

    def _augmentation(self) -> AugmentSettings | None:
        aug: AugmentSettings = self.data_config.augment
        return aug if (aug.masks or aug.waveform) else None
