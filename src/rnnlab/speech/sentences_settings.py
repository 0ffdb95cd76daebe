"""The ``[data]`` section of ``speech-sentences``: where the transcribed audio is, the units,
frame stacking, and the language model of the beam search.

::

    [data]
    dataset = "speech-sentences"   # a folder under data.root / $RNNLAB_DATA ...
    # path = "/data/my-corpus"     # ... or your own directory / table (then no dataset)
    train = "train"                # split folders or tables, relative to the data set
    valid = "valid"
    test = "test"
    unit = "char"                  # or "wordpiece" (BPE of vocab_size pieces)
    stack = 3                      # frames stacked (and subsampled) before the encoder
    [data.features]                # log-mel, no deltas (deltas look ahead, see streaming)
    [data.lm]
    text = "ptb/ptb.train.txt"     # LM text relative to the root; omit: train transcripts
    order = 3
    alpha = 0.5                    # LM weight, beta: word insertion bonus (tuned on valid)

A bad value is a one-line :class:`~rnnlab.errors.ConfigError` naming its key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rnnlab.config import DataConfig, Section
from rnnlab.speech.settings import AugmentSettings, FeatureSettings

__all__ = ["LMSettings", "SpeechSentencesData"]


class LMSettings(Section):
    """``[data.lm]``: the n-gram word language model of the beam search.

    Attributes:
        text: a text file (one sentence a line) to train the LM on, relative to the data
            root (or absolute); ``None``: the training transcripts.
        arpa: read this ARPA file instead of training one.
        order: n-gram order of a trained LM.
        exclude_eval: drop LM-text lines equal (after normalization) to a valid or test
            transcript, so the LM never saw an evaluation sentence.
        join_contractions: rejoin PTB-tokenized contractions (``do n't`` -> ``don't``).
        alpha: LM weight; beta: bonus per word (natural-log units).
        tune: choose alpha and beta on the valid split (grid ``alphas`` x ``betas``) at the
            test evaluation; else use ``alpha`` and ``beta`` as given.
        beam_width: prefixes kept per frame; prune: skip units more than this many nats
            below a frame's best unit.
        lexicon: spell only the LM's words (a misspelt word is otherwise an ``<unk>``,
            which an LM trained on text with unknown words rates as a common word);
            ``false`` for open-vocabulary transcripts.
    """

    text: str | None = None
    arpa: str | None = None
    order: int = Field(default=3, ge=1, le=6)
    exclude_eval: bool = True
    join_contractions: bool = True
    alpha: float = Field(default=0.5, ge=0.0)
    beta: float = 1.0
    tune: bool = True
    alphas: list[float] = Field(default_factory=lambda: [0.3, 0.5, 0.8, 1.2])
    betas: list[float] = Field(default_factory=lambda: [0.0, 1.0, 2.0, 3.0])
    beam_width: int = Field(default=16, ge=1)
    prune: float = Field(default=10.0, gt=0.0)
    lexicon: bool = True


def _sentence_features() -> FeatureSettings:
    return FeatureSettings(kind="logmel", n_mels=40, deltas=0, window_ms=25.0, hop_ms=10.0)


class SpeechSentencesData(DataConfig):
    """``[data]`` of ``speech-sentences``.

    Attributes:
        dataset: a folder name under the data root (``root``, else ``$RNNLAB_DATA``, else the
            cache); ignored when ``path`` is given.
        root: the data root.
        path: your own corpus: a directory holding the split folders/tables.
        train, valid, test: each split: a LibriSpeech-layout folder, a Common Voice TSV or a
            manifest (see :mod:`rnnlab.speech.transcripts`), relative to the data set.
        unit: ``char`` or ``wordpiece``; vocab_size: word pieces (``wordpiece`` only).
        stack: consecutive frames concatenated into one model step (frame rate / stack).
        max_seconds: longer recordings are errors.
        max_utterances: use at most this many utterances per split (smoke runs); 0 all.
        features, augment: see :class:`~rnnlab.speech.settings.FeatureSettings`,
            :class:`~rnnlab.speech.settings.AugmentSettings` (SpecAugment, speed, noise).
        lm: see :class:`LMSettings`.
        beam_on_valid: also LM-beam-search at every validation (slow); else test only.
    """

    dataset: str = "speech-sentences"
    root: str | None = None
    path: str | None = None
    train: str = "train"
    valid: str = "valid"
    test: str = "test"
    unit: Literal["char", "wordpiece"] = "char"
    vocab_size: int = Field(default=200, ge=53)
    stack: int = Field(default=3, ge=1, le=8)
    max_seconds: float = Field(default=30.0, gt=0.0)
    max_utterances: int = Field(default=0, ge=0)
    features: FeatureSettings = Field(default_factory=_sentence_features)
    augment: AugmentSettings = Field(default_factory=AugmentSettings)
    lm: LMSettings = Field(default_factory=LMSettings)
    beam_on_valid: bool = False
