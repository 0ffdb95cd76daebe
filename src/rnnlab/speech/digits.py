"""The ``speech-digits`` task: one recording -> one of the spoken digits.

Loss: cross-entropy over the digits (or over the tone corpus' words); metrics ``loss`` and
``accuracy``. At the test evaluation of a run whose directory the task was handed
(:meth:`~rnnlab.speech.task.SpeechTask.prepare_run_dir`) it writes the confusion matrix,
``plots/confusion.png`` and ``confusion.json``; :func:`write_confusion_matrix` writes it for
a finished run afterwards::

    [task]
    name = "speech-digits"

    batch: features (B, T_max, F), frames (B,), labels (B,)
      --SequenceModel(..., ClassificationHead(pooling))--> logits (B, C)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.config import ExperimentConfig
from rnnlab.errors import DataError, RunDirError
from rnnlab.models import ClassificationHead
from rnnlab.speech.batching import Utterance, UtteranceBatches, compute_features, prepare_all
from rnnlab.speech.confusion import plot_confusion_matrix, write_confusion_files
from rnnlab.speech.recognize import load_recognizer
from rnnlab.speech.settings import SpeechDigitsData
from rnnlab.speech.task import SpeechTask
from rnnlab.tasks.base import DataSpec, TaskData, model_device, register_task

__all__ = ["SpeechDigitsTask", "write_confusion_matrix"]


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
        keep = self.data_config.augment.waveform
        splits: dict[str, list[Utterance]] = {}
        for name, recs in parts.items():
            prepared = prepare_all(self.extractor, [waves[r.path] for r in recs])
            feats = compute_features(self.extractor, prepared)
            splits[name] = [
                Utterance(f, (r.digit,), w if keep and name == "train" else None, r.speaker)
                for r, f, w in zip(recs, feats, prepared, strict=True)
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
        test = (
            UtteranceBatches(splits["test"], batch, shuffle=False, drop_last=False)
            if splits["test"]
            else None  # own recordings with test_fraction = 0
        )
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
