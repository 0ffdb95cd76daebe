"""Utterances in memory and their padded, augmented batches.

Features are computed once per data build (:func:`compute_features`) and kept in each
:class:`Utterance`; :class:`UtteranceBatches` pads them into batches and, for training
loaders only, augments them. Augmentation is drawn per batch from ``(train.seed, epoch,
batch, rank)``, so a resumed run sees the same batches, and never touches valid or test::

    train batch: [speed perturbation, noise at snr -> features again] -> SpecAugment -> pad
      -> features (B, T_max, F), frames (B,), labels (B,)            speech-digits
      -> features (B, T_max, F), frames (B,), targets (B, S_max), target_lengths (B,)  speech-ctc
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.data.audio import FeatureExtractor, add_noise, spec_augment, speed_perturb
from rnnlab.data.loaders import ShuffledBatches
from rnnlab.speech.settings import AugmentSettings
from rnnlab.speech.vocabulary import BLANK, CTCVocabulary

__all__ = ["Utterance", "UtteranceBatches", "augmented_features", "compute_features", "prepare_all"]


@dataclass
class Utterance:
    """One utterance in memory.

    Attributes:
        features: ``(T, F)`` features (computed once per data build).
        digits: the spoken digits (one for isolated words).
        waveform: the (prepared: trimmed, loudness-normalized) samples, kept only when
            training augments waveforms (noise, speed).
        speaker: who spoke it.
    """

    features: Tensor
    digits: tuple[int, ...]
    waveform: Tensor | None = None
    speaker: str = ""


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
        vocabulary: CTCVocabulary | None = None,
    ) -> None:
        super().__init__(
            list(utterances),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            collate=self._plain,
        )
        if augment is not None and augment.waveform and extractor is None:
            raise ValueError(
                "waveform augmentation (noise, speed, VTLP) needs the feature extractor"
            )
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
        if aug is not None and aug.waveform:
            assert generator is not None  # aug is set only with a generator
            if any(u.waveform is None for u in items):
                raise ValueError("waveform augmentation needs utterances with waveforms")
            assert self.extractor is not None  # checked in __init__
            waves = [u.waveform for u in items if u.waveform is not None]
            features, frames = augmented_features(waves, aug, generator, self.extractor)
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


def augmented_features(
    waves: Sequence[Tensor],
    aug: AugmentSettings,
    generator: torch.Generator,
    extractor: FeatureExtractor,
) -> tuple[Tensor, Tensor]:
    """Padded features ``(B, T, F)`` and frame counts ``(B,)`` of prepared waveforms after
    speed perturbation (one factor per waveform), additive noise and vocal tract length
    perturbation of the mel filters, drawn from ``generator``.
    """
    low, high = aug.speed
    if (low, high) != (1.0, 1.0):
        factors = low + (high - low) * torch.rand(len(waves), generator=generator)
        waves = [speed_perturb(w, float(f)) for w, f in zip(waves, factors, strict=True)]
    samples = torch.tensor([w.numel() for w in waves])
    padded = _pad(waves)  # (B, N)
    if aug.noise_snr_db is not None:
        padded = add_noise(
            padded, aug.noise_snr_db, training=True, lengths=samples, generator=generator
        )
    warp = None
    if aug.vtlp != (1.0, 1.0):
        low, high = aug.vtlp
        warp = low + (high - low) * torch.rand(len(waves), generator=generator)
    with torch.no_grad():  # the waveforms are prepared already (trimmed, leveled)
        features, frames = extractor(padded, samples, prepare=False, warp=warp)
    return features, frames


def compute_features(
    extractor: FeatureExtractor, waves: Sequence[Tensor], batch: int = 64
) -> list[Tensor]:
    """Features ``(T_i, F)`` of each waveform, computed in padded batches of similar lengths.

    Args:
        extractor: the run's feature pipeline.
        waves: ``(N_i,)`` samples per utterance, prepared already
            (:meth:`~rnnlab.data.audio.FeatureExtractor.prepare`; see :func:`prepare_all`).
        batch: waveforms per padded call of the extractor.
    """
    out: list[Tensor | None] = [None] * len(waves)
    order = sorted(range(len(waves)), key=lambda i: waves[i].numel())
    with torch.no_grad():
        for begin in range(0, len(order), batch):
            rows = order[begin : begin + batch]
            lengths = torch.tensor([waves[i].numel() for i in rows])
            feats, frames = extractor(_pad([waves[i] for i in rows]), lengths, prepare=False)
            for k, i in enumerate(rows):
                out[i] = feats[k, : int(frames[k])].clone()
    return [f for f in out if f is not None]


def prepare_all(extractor: FeatureExtractor, waves: Sequence[Tensor]) -> list[Tensor]:
    """Each waveform trimmed and loudness-normalized as the extractor is configured.

    Done once per data build, so the cached features, the waveforms kept for augmentation
    and ``rnnlab recognize`` (whose extractor prepares each recording itself) all see the
    same audio.
    """
    if not extractor.config.prepares:
        return list(waves)
    return [extractor.prepare(w) for w in waves]
