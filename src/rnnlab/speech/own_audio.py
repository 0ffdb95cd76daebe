"""Your own labelled recordings for ``speech-digits``: a folder or a manifest, split, reported.

Two layouts (``[data] source``), any label set (keyword spotting, commands, speakers):

``folder``: labels are sub-folder names; ``train/``, ``valid/`` and ``test/`` sub-folders,
when present, are the split::

    my_audio/yes/001.wav             my_audio/train/yes/001.wav
    my_audio/no/take2.flac     or    my_audio/valid/yes/002.wav
                                     my_audio/test/no/003.flac

``manifest``: a CSV (``.csv``) or TSV (``.tsv``, or a tab in the header) with columns
``path`` and ``label`` and optionally ``speaker`` and ``split`` (names set by
``data.path_column`` ...); paths are relative to the manifest's folder.

Split when the data names none: with speakers, a seeded speaker-disjoint split (whole
speakers are held out until ``test_fraction``, then ``valid_fraction``, of the recordings
are); without, a seeded split stratified by label. Recordings are read at any rate
(resampled to ``features.sample_rate``), mono or stereo (mixed down), WAV or FLAC.

Bad recordings (empty, truncated, not audio, shorter than one feature window, silent below
-60 dBFS peak, or missing from disk): with ``bad_files = "skip"`` (the default: one bad
take in a thousand should not stop a run) each is left out, counted in the report and
named in one warning; with ``"error"`` the first refuses the data set with one line naming
the file. A data set where more than half the recordings are unusable (a wrong ``path``
or manifest base, most likely), or left with no training or validation recording, is
always refused.
The report (:class:`BalanceReport`: counts per label and split, skipped files) is printed
at the data build and written as ``class_balance.json`` into the run directory.
"""

from __future__ import annotations

import csv
import random
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from rnnlab.data.audio import AudioError, FeatureConfig, load_audio
from rnnlab.data.fsdd import Recording
from rnnlab.errors import DataError
from rnnlab.speech.screening import check_length, silence_notice
from rnnlab.speech.settings import SpeechDigitsData

__all__ = [
    "AUDIO_SUFFIXES",
    "SPLITS",
    "BalanceReport",
    "Item",
    "list_folder",
    "own_recordings",
    "read_manifest",
    "split_items",
]

AUDIO_SUFFIXES = (".wav", ".flac")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Item:
    """One labelled recording before loading: its file, label, speaker and named split."""

    path: Path
    label: str
    speaker: str = ""
    split: str = ""


@dataclass
class BalanceReport:
    """Recordings per label and split, and the files left out.

    Attributes:
        labels: the class names, in class-index order.
        counts: ``counts[label][split]``.
        skipped: ``(file, reason)`` of each recording left out.
        split_by: how the split was made (``named``, ``speaker``, ``stratified``).
    """

    labels: list[str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    split_by: str = "stratified"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form written to ``class_balance.json``."""
        return {
            "labels": self.labels,
            "split_by": self.split_by,
            "counts": self.counts,
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
        }

    def table(self) -> str:
        """A plain-text table: one row per label, a column per split, the total row."""
        width = max([5, *(len(label) for label in self.labels)])
        lines = [f"{'label':<{width}} " + " ".join(f"{s:>6}" for s in SPLITS)]
        for label in self.labels:
            row = self.counts.get(label, {})
            lines.append(f"{label:<{width}} " + " ".join(f"{row.get(s, 0):>6}" for s in SPLITS))
        totals = [sum(self.counts.get(lb, {}).get(s, 0) for lb in self.labels) for s in SPLITS]
        lines.append(f"{'total':<{width}} " + " ".join(f"{t:>6}" for t in totals))
        lines.append(f"split: {self.split_by}; skipped files: {len(self.skipped)}")
        return "\n".join(lines)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
    )


def list_folder(root: Path) -> list[Item]:
    """The recordings of a folder layout (labels from sub-folder names; see the module).

    Raises:
        DataError: no such folder, or no WAV/FLAC file in a label sub-folder.
    """
    if not root.is_dir():
        raise DataError(f"data.path={str(root)!r}: no such folder")
    named = [root / s for s in SPLITS if (root / s).is_dir()]
    bases = [(b, b.name) for b in named] if named else [(root, "")]
    items = []
    for base, split in bases:
        for label_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for file in _audio_files(label_dir):
                items.append(Item(file, label_dir.name, "", split))
    if not items:
        layout = "<split>/<label>/*.wav" if named else "<label>/*.wav"
        raise DataError(
            f"data.path={str(root)!r}: no WAV or FLAC files in label sub-folders ({layout})"
        )
    return items


def read_manifest(path: Path, data: SpeechDigitsData) -> list[Item]:
    """The rows of a CSV/TSV manifest (paths relative to its folder).

    Raises:
        DataError: no such file, a missing column, or a row without a path or label.
    """
    if not path.is_file():
        raise DataError(f"data.path={str(path)!r}: no such manifest file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the manifest as UTF-8 text ({err})") from None
    header = text.splitlines()[0] if text.strip() else ""
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in header else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = [c.strip() for c in reader.fieldnames or []]
    for key, name in (("path_column", data.path_column), ("label_column", data.label_column)):
        if name not in columns:
            raise DataError(
                f"{path}: no column {name!r} (data.{key}); the header has {columns or 'nothing'}"
            )
    items = []
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        file, label = row.get(data.path_column, ""), row.get(data.label_column, "")
        if not file or not label:
            missing = data.path_column if not file else data.label_column
            raise DataError(f"{path}, line {number}: empty {missing!r}")
        split = row.get(data.split_column, "").lower()
        if split and split not in SPLITS:
            raise DataError(
                f"{path}, line {number}: {data.split_column}={split!r}; expected train, valid "
                "or test"
            )
        items.append(Item(path.parent / file, label, row.get(data.speaker_column, ""), split))
    if not items:
        raise DataError(f"{path}: the manifest has no rows")
    return items


def split_items(
    items: list[Item], valid_fraction: float, test_fraction: float, seed: int
) -> tuple[dict[str, list[Item]], str]:
    """The items per split, and how they were split (``named``, ``speaker``, ``stratified``).

    Named splits are used when every item has one. Else, with every item's speaker known,
    whole speakers (in a seeded order) go to test until it holds ``test_fraction`` of the
    recordings, then to valid likewise: no speaker is in two splits. Else each label's
    items (seeded order) are cut by the fractions, so every split has every label's share.

    Raises:
        DataError: some items name a split and others do not.

    Example:
        >>> its = [Item(Path(f"{i}.wav"), "ab"[i % 2], f"s{i % 5}") for i in range(20)]
        >>> parts, how = split_items(its, 0.2, 0.2, seed=0)
        >>> how, [len(parts[s]) for s in SPLITS]
        ('speaker', [12, 4, 4])
    """
    parts: dict[str, list[Item]] = {s: [] for s in SPLITS}
    named = [i for i in items if i.split]
    if named and len(named) < len(items):
        first = next(i for i in items if not i.split)
        raise DataError(f"{first.path}: no split, while {len(named)} other recordings name one")
    if named:
        for item in items:
            parts[item.split].append(item)
        return parts, "named"
    rng = random.Random(seed)
    if all(i.speaker for i in items):
        per_speaker: dict[str, list[Item]] = defaultdict(list)
        for item in items:
            per_speaker[item.speaker].append(item)
        speakers = sorted(per_speaker)
        rng.shuffle(speakers)
        wanted = {"test": test_fraction * len(items), "valid": valid_fraction * len(items)}
        for speaker in speakers:
            target = next(
                (s for s in ("test", "valid") if wanted[s] > 0 and len(parts[s]) < wanted[s]),
                "train",
            )
            if target != "train" and len(speakers) - speakers.index(speaker) <= 1:
                target = "train"  # the last speaker always trains
            parts[target].extend(per_speaker[speaker])
        return parts, "speaker"
    per_label: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        per_label[item.label].append(item)
    for label in sorted(per_label):
        group = per_label[label]
        rng.shuffle(group)
        n_test = round(test_fraction * len(group))
        n_valid = round(valid_fraction * len(group))
        parts["test"].extend(group[:n_test])
        parts["valid"].extend(group[n_test : n_test + n_valid])
        parts["train"].extend(group[n_test + n_valid :])
    return parts, "stratified"


def own_recordings(
    data: SpeechDigitsData, config: FeatureConfig
) -> tuple[dict[str, list[Recording]], dict[Path, Tensor], BalanceReport]:
    """Load, screen and split the user's recordings.

    Returns:
        Recordings per split (``Recording.digit`` is the class index, ``index`` the file's
        position), each file's waveform at ``config.sample_rate``, and the report.

    Raises:
        DataError: the layout or manifest is wrong, a label is not in ``data.labels``, a bad
            file with ``bad_files = "error"``, or no train or valid recording left.
    """
    root = Path(data.path).expanduser()
    items = list_folder(root) if data.source == "folder" else read_manifest(root, data)
    found = sorted({i.label for i in items})
    labels = list(data.labels) or found
    unknown = [i for i in items if i.label not in labels]
    if unknown:
        raise DataError(
            f"{unknown[0].path}: label {unknown[0].label!r} is not in data.labels {labels}"
        )
    report = BalanceReport(labels)
    waves: dict[Path, Tensor] = {}
    good: list[Item] = []
    for item in items:
        try:
            audio = load_audio(
                item.path, config.sample_rate, max_seconds=data.max_seconds, warn=False
            )
            check_length(audio, config)
            silent = silence_notice(audio)
            if silent is not None:
                raise AudioError(f"{item.path}: silent ({silent.split('(')[1].rstrip(')')})")
        except AudioError as err:
            if data.bad_files == "error":
                raise AudioError(f"{err} (data.bad_files = 'error')") from None
            report.skipped.append((str(item.path), str(err).split(": ", 1)[-1]))
            continue
        waves[item.path] = audio.samples
        good.append(item)
    if len(report.skipped) * 2 > len(items):  # more bad than good: a wrong path, not bad takes
        first, why = report.skipped[0]
        raise DataError(
            f"{first}: {why}; {len(report.skipped)} of {len(items)} recordings are unusable, "
            "so data.path or the manifest's paths are likely wrong"
        )
    if report.skipped:
        warnings.warn(
            f"{len(report.skipped)} of {len(items)} recordings skipped as unusable (first: "
            f"{report.skipped[0][0]}: {report.skipped[0][1]}); listed in class_balance.json",
            stacklevel=3,
        )
    parts, report.split_by = split_items(
        good, data.valid_fraction, data.test_fraction, data.split_seed
    )
    counts: dict[str, Counter[str]] = {s: Counter(i.label for i in parts[s]) for s in SPLITS}
    report.counts = {lb: {s: counts[s][lb] for s in SPLITS} for lb in labels}
    for name in ("train", "valid"):
        if not parts[name]:
            raise DataError(
                f"data.path={data.path!r}: the {name} split is empty ({len(good)} usable "
                f"recordings, split {report.split_by}); add recordings or change the fractions"
            )
    index = {label: k for k, label in enumerate(labels)}
    recordings = {
        name: [Recording(i.speaker, index[i.label], n, i.path) for n, i in enumerate(part)]
        for name, part in parts.items()
    }
    return recordings, waves, report
