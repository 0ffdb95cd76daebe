r"""The ``speech-sentences`` task: transcribed sentences with CTC over characters or pieces.

Data flow::

    split folder/table --read_transcripts--> (audio file, text)  --check_text--> normalized
    audio --load_audio (mono, features.sample_rate)--> FeatureExtractor (log-mel) --> (T, F)
      --SpecAugment (train)--> stack_frames(k) --> (ceil(T/k), k F)
      --SequenceModel (BiLSTM/BiGRU or unidirectional, CTCHead)--> log-probs (B, T/k, C)

Metrics at every evaluation: ``loss`` (CTC per target unit), ``wer`` and ``cer`` of greedy
decoding. At the test evaluation (every evaluation with ``data.beam_on_valid``) also
``wer_lm``/``cer_lm``: prefix beam search with the n-gram word LM
(:mod:`rnnlab.speech.lm_beam`), its ``alpha``/``beta`` chosen on the **valid** split (reported
as ``lm_alpha``, ``lm_beta``) and then applied once to the test split.

Run files: ``units.json`` (the units), ``lm.arpa`` (the LM, when one is used) and
``decoding.json`` (the tuned alpha and beta), which ``rnnlab recognize`` reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.data.audio import AudioError, FeatureExtractor, load_audio, spec_augment
from rnnlab.data.loaders import ShuffledBatches
from rnnlab.errors import DataError
from rnnlab.io import atomic_write_text
from rnnlab.speech.batching import augmented_features
from rnnlab.speech.ctc import decode_batch
from rnnlab.speech.ctc_task import SpeechCTCTask
from rnnlab.speech.metrics import character_error_rate, word_error_rate
from rnnlab.speech.model import CTCHead
from rnnlab.speech.sentences_features import stack_frames, stacked_lengths
from rnnlab.speech.sentences_settings import AugmentSettings, SpeechSentencesData
from rnnlab.speech.task import SpeechTask
from rnnlab.speech.transcripts import Transcribed, read_transcripts
from rnnlab.speech.units import TextUnits, check_text
from rnnlab.tasks.base import DataSpec, TaskData, model_device, register_task

__all__ = ["SentenceBatches", "SpeechSentencesTask", "corpus_folder"]

SPLITS = ("train", "valid", "test")


def corpus_folder(data: SpeechSentencesData) -> Path:
    """The corpus directory: ``data.path``, else ``dataset`` under the first data root
    (``data.root``, ``$RNNLAB_DATA``, the cache) that holds it."""
    from rnnlab.data.datasets.locating import search_roots

    if data.path is not None:
        folder = Path(data.path).expanduser()
        if not folder.exists():
            raise DataError(f"data.path {folder} does not exist")
        return folder
    roots = search_roots(data.root)
    for root in roots:
        if (root / data.dataset).is_dir():
            return root / data.dataset
    raise DataError(
        f"data set {data.dataset!r} not found under {', '.join(map(str, roots))} "
        "(set data.root or $RNNLAB_DATA, or give data.path)"
    )


class SentenceBatches(ShuffledBatches):
    """Padded batches ``(features (B, T/k, kF), steps (B,), targets (B, S), lengths (B,))``.

    Augmentation (training only) draws from a generator seeded by ``(seed, epoch, batch)``,
    so a resumed epoch repeats its batches; it is applied before stacking. Speed perturbation,
    noise and VTLP work on the waveform or its spectrum, so they need ``waveforms`` (the
    prepared samples of each item) and the ``extractor`` that recomputes the features per batch.
    """

    def __init__(
        self,
        items: list[tuple[Tensor, list[int]]],
        batch_size: int,
        stack: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        augment: AugmentSettings | None = None,
        waveforms: list[Tensor] | None = None,
        extractor: FeatureExtractor | None = None,
    ) -> None:
        super().__init__(
            items, batch_size, shuffle=shuffle, seed=seed, drop_last=shuffle, collate=self._plain
        )
        usable = waveforms is not None and extractor is not None and len(waveforms) == len(items)
        if augment is not None and augment.waveform and not usable:
            raise ValueError(
                "waveform augmentation (speed, noise, VTLP) needs every item's waveform "
                "and the feature extractor"
            )
        self.items = items
        self.waveforms = waveforms
        self.extractor = extractor
        self.stack = stack
        self.augment = augment

    def _plain(self, rows: list[tuple[Tensor, list[int]]]) -> tuple[Tensor, ...]:
        return self.collate_batch(rows, None)

    def batches(self, start: int = 0) -> Iterator[Any]:
        order = self.order()
        local = self.batch_size // self.world_size
        for index in range(start, len(self)):
            rows = order[index * self.batch_size : (index + 1) * self.batch_size]
            if self.world_size > 1:
                rows = rows[self.rank * local : (self.rank + 1) * local]
            generator = None
            if self.augment is not None:
                key = (self.seed * 1_000_003 + self.epoch) * 100_003 + index
                generator = torch.Generator().manual_seed(key % 2**62)
            picked = [int(i) for i in rows]
            waves = None
            if generator is not None and self.waveforms is not None:
                waves = [self.waveforms[i] for i in picked]
            yield self.collate_batch([self.items[i] for i in picked], generator, waves)

    def collate_batch(
        self,
        rows: list[tuple[Tensor, list[int]]],
        generator: torch.Generator | None,
        waves: list[Tensor] | None = None,
    ) -> tuple[Tensor, ...]:
        """Pad, augment (with a generator; speed and noise from ``waves``) and stack."""
        pad = nn.utils.rnn.pad_sequence
        aug = self.augment
        if generator is not None and aug is not None and aug.waveform:
            assert waves is not None and self.extractor is not None  # checked in __init__
            features, frames = augmented_features(waves, aug, generator, self.extractor)
        else:
            features = pad([f for f, _ in rows], batch_first=True)  # (B, T, F)
            frames = torch.tensor([f.shape[0] for f, _ in rows], dtype=torch.long)
        if generator is not None and aug is not None and aug.masks:
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
        targets = [torch.tensor(t, dtype=torch.long) for _, t in rows]
        lengths = torch.tensor([len(t) for _, t in rows], dtype=torch.long)
        return (
            stack_frames(features, self.stack),
            stacked_lengths(frames, self.stack),
            pad(targets, batch_first=True).long(),
            lengths,
        )


@register_task("speech-sentences")
class SpeechSentencesTask(SpeechTask):
    """Sentence recognition with CTC (see the module doc)."""

    Data = SpeechSentencesData
    unit = "samples"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._units: TextUnits | None = None
        self._valid_loader: Any = None
        self.lm: Any = None  # rnnlab.speech.lm.NGramLM, built with the data or loaded
        self.decoding: dict[str, float] = {}
        self.texts: dict[str, list[str]] = {}

    @property
    def words(self) -> tuple[str, ...]:
        return ()

    @property
    def units(self) -> TextUnits:
        """The CTC units: characters, or the pieces learnt in :meth:`build_data` / loaded."""
        if self._units is None:
            if self.data_config.unit == "wordpiece":
                raise DataError("word pieces are learnt from the data: build the data first")
            self._units = TextUnits.characters()
        return self._units

    def spec(self) -> DataSpec:
        data: SpeechSentencesData = self.data_config
        classes = data.vocab_size + 1 if data.unit == "wordpiece" else self.units.num_classes
        return DataSpec(
            num_features=self.feature_config.num_features * data.stack, num_classes=classes
        )

    def _head(self, in_features: int, spec: DataSpec) -> nn.Module:
        return CTCHead(in_features, spec.num_classes or 2, self.config.model.dropout)

    def write_run_files(self, run_dir: str | os.PathLike[str]) -> list[Path]:
        folder = Path(run_dir)
        settings = self.data_config.features.model_dump(mode="json")
        payload = {"features": settings, "stack": self.data_config.stack}
        written = [atomic_write_text(folder / "features.json", json.dumps(payload, indent=2))]
        if self._units is not None or self.data_config.unit == "char":
            text = json.dumps(self.units.to_dict(), indent=2) + "\n"
            written.append(atomic_write_text(folder / "units.json", text))
        if self.lm is not None:
            written.append(atomic_write_text(folder / "lm.arpa", self.lm.to_arpa()))
        if self.decoding:
            text = json.dumps(self.decoding, indent=2) + "\n"
            written.append(atomic_write_text(folder / "decoding.json", text))
        return written

    def load_run_files(self, run_dir: str | os.PathLike[str]) -> None:
        """Read ``units.json``, ``lm.arpa`` and ``decoding.json`` back (for ``recognize``)."""
        from rnnlab.speech.lm import NGramLM

        folder = Path(run_dir)
        units = folder / "units.json"
        if units.is_file():
            self._units = TextUnits.from_dict(json.loads(units.read_text(encoding="utf-8")))
        if (folder / "lm.arpa").is_file():
            self.lm = NGramLM.read_arpa(folder / "lm.arpa")
        if (folder / "decoding.json").is_file():
            self.decoding = json.loads((folder / "decoding.json").read_text(encoding="utf-8"))

    # ---------------------------------------------------------------- data

    def _split(self, folder: Path, name: str) -> list[tuple[Transcribed, str]]:
        data: SpeechSentencesData = self.data_config
        items = read_transcripts(folder / getattr(data, name))
        if data.max_utterances:
            items = items[: data.max_utterances]
        return [(item, check_text(item.text, f"{item.path}")) for item in items]

    def _features(
        self, items: list[tuple[Transcribed, str]], keep_waveforms: bool = False
    ) -> tuple[list[Tensor], list[Tensor] | None]:
        """Each item's features, and (``keep_waveforms``) its prepared samples."""
        data: SpeechSentencesData = self.data_config
        out, waves = [], []
        with torch.no_grad():
            for item, _ in items:
                try:
                    audio = load_audio(
                        item.path,
                        data.features.sample_rate,
                        max_seconds=data.max_seconds,
                        warn=False,
                    )
                except AudioError as err:
                    raise DataError(str(err)) from None
                samples = self.extractor.prepare(audio.samples)
                features, _ = self.extractor(samples, prepare=False)
                out.append(features)
                if keep_waveforms:
                    waves.append(samples)
        return out, (waves if keep_waveforms else None)

    def build_data(self) -> TaskData:
        data: SpeechSentencesData = self.data_config
        folder = corpus_folder(data)
        splits = {name: self._split(folder, name) for name in SPLITS}
        self.texts = {name: [text for _, text in items] for name, items in splits.items()}
        if data.unit == "wordpiece":
            self._units = TextUnits.train_pieces(self.texts["train"], data.vocab_size)
        units = self.units
        self.lm = self._language_model(folder)
        loaders: dict[str, SentenceBatches] = {}
        augment = self._augmentation()
        for name, items in splits.items():
            train = name == "train"
            waveform = train and augment is not None and augment.waveform
            feats, waves = self._features(items, keep_waveforms=waveform)
            rows = []
            for (item, text), f in zip(items, feats, strict=True):
                targets = units.encode(text)
                steps = -(-f.shape[0] // data.stack)
                if len(targets) > steps:
                    raise DataError(
                        f"{item.path}: {len(targets)} units do not fit in {steps} steps "
                        f"(lower data.stack={data.stack} or data.features.hop_ms)"
                    )
                rows.append((f, targets))
            loaders[name] = SentenceBatches(
                rows,
                self.config.train.batch_size,
                data.stack,
                shuffle=train,
                seed=self.config.train.seed,
                augment=augment if train else None,
                waveforms=waves,
                extractor=self.extractor,
            )
        self._valid_loader, self._test_loader = loaders["valid"], loaders["test"]
        self._after_build()
        return TaskData(loaders["train"], loaders["valid"], loaders["test"], self.spec())

    def _language_model(self, folder: Path) -> Any:
        from rnnlab.speech.lm import NGramLM, read_lm_text

        lm = self.data_config.lm
        root = folder.parent
        if lm.arpa is not None:
            return NGramLM.read_arpa(_resolve(lm.arpa, root))
        if lm.text is None:
            return NGramLM.train(self.texts["train"], lm.order)
        exclude = set(self.texts["valid"]) | set(self.texts["test"]) if lm.exclude_eval else set()
        lines = read_lm_text(_resolve(lm.text, root), lm.join_contractions, exclude)
        return NGramLM.train(lines, lm.order)

    # ---------------------------------------------------------------- training

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float]]:
        features, steps, targets, target_lengths = batch
        log_probs, _ = model(features, steps.cpu())  # (B, T, C)
        loss = SpeechCTCTask.ctc_loss(log_probs, steps, targets, target_lengths)
        return loss, None, {"count": float(features.shape[0])}

    @torch.no_grad()
    def _outputs(
        self, model: nn.Module, loader: Iterable[Any]
    ) -> tuple[float, list[str], list[Tensor]]:
        """Summed per-unit loss, references and per-utterance log-probs ``(T_i, C)``."""
        device = model_device(model)
        total, refs, outputs = 0.0, [], []
        for batch in loader:
            features, steps, targets, target_lengths = self.to_device(batch, device)
            log_probs, _ = model(features, steps.cpu())
            losses = SpeechCTCTask.ctc_loss(
                log_probs, steps, targets, target_lengths, reduction="none"
            )
            total += float((losses / target_lengths.clamp(min=1)).sum())
            cpu = log_probs.float().cpu()
            for row, (n, length) in enumerate(
                zip(steps.tolist(), target_lengths.tolist(), strict=True)
            ):
                refs.append(self.units.decode(targets[row, :length].cpu().tolist()))
                outputs.append(cpu[row, :n])
        return total, refs, outputs

    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        data: SpeechSentencesData = self.data_config
        total, refs, outputs = self._outputs(model, loader)
        if not refs:
            raise DataError(f"task {self.name!r}: nothing to evaluate (empty split)")
        greedy = [
            self.units.decode(h.tokens) for h in (decode_batch(o.unsqueeze(0))[0] for o in outputs)
        ]
        metrics = {
            "loss": total / len(refs),
            "wer": word_error_rate(refs, greedy),
            "cer": character_error_rate(refs, greedy),
        }
        if self.lm is not None and (loader is self._test_loader or data.beam_on_valid):
            metrics.update(self._lm_metrics(model, refs, outputs))
        return metrics

    def _lm_metrics(
        self, model: nn.Module, refs: list[str], outputs: list[Tensor]
    ) -> dict[str, float]:
        from rnnlab.speech.lm_beam import LMDecoder, tune_lm_weights

        lm = self.data_config.lm
        alpha, beta = lm.alpha, lm.beta
        if lm.tune and self._valid_loader is not None:
            _, valid_refs, valid_out = self._outputs(model, self._valid_loader)
            alpha, beta = tune_lm_weights(
                valid_out,
                valid_refs,
                self.units,
                self.lm,
                lm.alphas,
                lm.betas,
                beam_width=lm.beam_width,
                prune=lm.prune,
                lexicon=lm.lexicon,
            )
        decoder = LMDecoder(
            self.units, self.lm, alpha, beta, lm.beam_width, lm.prune, lexicon=lm.lexicon
        )
        hyps = [decoder.decode(o).text for o in outputs]
        self.decoding = {"alpha": alpha, "beta": beta, "beam_width": lm.beam_width}
        if self.run_dir is not None:
            self.write_run_files(self.run_dir)
        return {
            "wer_lm": word_error_rate(refs, hyps),
            "cer_lm": character_error_rate(refs, hyps),
            "lm_alpha": alpha,
            "lm_beta": beta,
        }


def _resolve(name: str, root: Path) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else root / path
