"""The ``speech-ctc`` task: connected digits -> the digit words, with CTC.

Utterances of ``min_digits..max_digits`` digits of one speaker are joined with random
silences (:func:`rnnlab.data.fsdd.build_connected_digits`; train utterances from train
recordings, test utterances from test recordings only). Loss: CTC over word tokens
(``unit = "word"``: class ``d + 1`` is digit ``d``, blank 0) or characters (``unit =
"char"``: the letters of the words and the space), see
:class:`~rnnlab.speech.vocabulary.CTCVocabulary`. Metrics ``wer`` and ``cer`` of greedy
decoding; ``wer_beam`` and ``cer_beam`` of prefix beam search at the test evaluation (and at
every validation with ``beam_on_valid``)::

    [task]
    name = "speech-ctc"

    batch: features (B, T_max, F), frames (B,), targets (B, S_max), target_lengths (B,)
      --SequenceModel(..., CTCHead)--> log-probs (B, T, C) --CTC loss, decoding-->
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.data.fsdd import build_connected_digits
from rnnlab.errors import DataError
from rnnlab.io import atomic_write_text
from rnnlab.speech.batching import Utterance, UtteranceBatches, compute_features
from rnnlab.speech.ctc import decode_batch
from rnnlab.speech.metrics import character_error_rate, word_error_rate
from rnnlab.speech.model import CTCHead
from rnnlab.speech.settings import SpeechCTCData
from rnnlab.speech.task import SpeechTask
from rnnlab.speech.vocabulary import BLANK, CTCVocabulary
from rnnlab.tasks.base import DataSpec, TaskData, model_device, register_task

__all__ = ["SpeechCTCTask"]


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
    def vocabulary(self) -> CTCVocabulary:
        """The CTC tokens of this run."""
        return CTCVocabulary.for_words(self.words, self.data_config.unit)

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
            feats = compute_features(self.extractor, [u.samples for u in utterances], batch=32)
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
