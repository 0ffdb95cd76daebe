"""Transcribed recordings from the layouts people have: LibriSpeech, Common Voice, a manifest.

Three layouts, detected from what a path holds (:func:`read_transcripts`):

- **LibriSpeech**: a directory of ``<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac`` with
  one ``<speaker>-<chapter>.trans.txt`` per chapter, a line per utterance, ``<id> <TEXT>``.
- **Common Voice**: a TSV with (at least) ``path`` and ``sentence`` columns, the audio under
  ``clips/`` beside it (or beside the TSV itself); ``client_id`` is the speaker when present.
- **Manifest**: a CSV or TSV with a header naming ``path`` and ``text`` (``transcript`` and
  ``sentence`` are accepted too) and optionally ``speaker``; relative paths are relative to
  the manifest's folder.

Every problem is one :class:`~rnnlab.errors.DataError` line naming the file (and row): a
transcript line without text, an utterance whose audio file is missing, a table without the
needed columns, a layout that holds no utterance at all.

Example:
    >>> items = read_transcripts("speech-sentences/train")  # doctest: +SKIP
    >>> items[0].text, items[0].speaker  # doctest: +SKIP
    ('STRATEGY HOWEVER IS ABOUT POSSIBILITIES NOT HOPES AND DREAMS', '1000')
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from rnnlab.errors import DataError

__all__ = [
    "Transcribed",
    "read_common_voice",
    "read_librispeech",
    "read_manifest",
    "read_transcripts",
]

AUDIO_SUFFIXES = (".flac", ".wav")
TEXT_COLUMNS = ("text", "transcript", "sentence")


@dataclass(frozen=True)
class Transcribed:
    """One recording and what is said in it.

    Attributes:
        path: the audio file.
        text: the transcript as written (normalize with :mod:`rnnlab.speech.units`).
        speaker: who speaks ("" when unknown).
        key: the utterance id (LibriSpeech id, or the file name).
    """

    path: Path
    text: str
    speaker: str
    key: str


def _audio_of(folder: Path, key: str, transcript: Path, line: int) -> Path:
    for suffix in AUDIO_SUFFIXES:
        candidate = folder / f"{key}{suffix}"
        if candidate.is_file():
            return candidate
    raise DataError(f"{transcript}, line {line}: no audio file {key}.flac or {key}.wav in {folder}")


def read_librispeech(root: str | os.PathLike[str]) -> list[Transcribed]:
    """Utterances of a LibriSpeech-layout directory, sorted by id.

    Raises:
        DataError: no ``*.trans.txt`` under ``root``; a line without a transcript; an
            utterance whose audio is missing.
    """
    folder = Path(root)
    files = sorted(folder.rglob("*.trans.txt"))
    if not files:
        raise DataError(f"{folder}: no *.trans.txt transcripts (LibriSpeech layout expected)")
    out: list[Transcribed] = []
    for transcript in files:
        speaker = transcript.name.split("-", 1)[0]
        for number, raw in enumerate(transcript.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            key, _, text = raw.strip().partition(" ")
            if not text.strip():
                raise DataError(f"{transcript}, line {number}: utterance {key} has no transcript")
            path = _audio_of(transcript.parent, key, transcript, number)
            out.append(Transcribed(path, text.strip(), speaker, key))
    return sorted(out, key=lambda item: item.key)


def _table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the table ({err})") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in text.split("\n", 1)[0] else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    rows = list(reader)
    return [f.strip() for f in reader.fieldnames or []], rows


def read_manifest(path: str | os.PathLike[str]) -> list[Transcribed]:
    """Utterances of a CSV/TSV manifest with ``path`` and ``text`` columns (``speaker`` optional).

    Raises:
        DataError: a missing column, an empty transcript or a missing audio file (naming
            the row, counting the header as row 1).
    """
    manifest = Path(path)
    fields, rows = _table(manifest)
    text_column = next((c for c in TEXT_COLUMNS if c in fields), None)
    if "path" not in fields or text_column is None:
        raise DataError(
            f"{manifest}: a manifest needs a header with 'path' and 'text' columns, got {fields}"
        )
    return _rows(manifest, rows, text_column, "speaker", manifest.parent)


def read_common_voice(path: str | os.PathLike[str]) -> list[Transcribed]:
    """Utterances of a Common Voice TSV (``path``, ``sentence``; audio in ``clips/``)."""
    tsv = Path(path)
    fields, rows = _table(tsv)
    if "path" not in fields or "sentence" not in fields:
        raise DataError(
            f"{tsv}: a Common Voice TSV needs 'path' and 'sentence' columns, got {fields}"
        )
    clips = tsv.parent / "clips"
    return _rows(tsv, rows, "sentence", "client_id", clips if clips.is_dir() else tsv.parent)


def _rows(
    table: Path, rows: list[dict[str, str]], text_column: str, speaker_column: str, base: Path
) -> list[Transcribed]:
    out = []
    for number, row in enumerate(rows, 2):
        name = (row.get("path") or "").strip()
        text = (row.get(text_column) or "").strip()
        if not name:
            raise DataError(f"{table}, row {number}: empty path")
        if not text:
            raise DataError(f"{table}, row {number}: {name} has an empty transcript")
        audio = Path(name) if Path(name).is_absolute() else base / name
        if not audio.is_file():
            raise DataError(f"{table}, row {number}: audio file {audio} does not exist")
        speaker = (row.get(speaker_column) or "").strip()
        out.append(Transcribed(audio, text, speaker, audio.stem))
    if not out:
        raise DataError(f"{table}: no utterances")
    return out


def read_transcripts(path: str | os.PathLike[str]) -> list[Transcribed]:
    """Read whichever layout ``path`` is: a directory (LibriSpeech, or one holding a single
    ``*.tsv``/``*.csv``) or a table (Common Voice when it has a ``sentence`` column and no
    ``text`` column, else a manifest).

    Raises:
        DataError: ``path`` does not exist or is no known layout (and see the readers).
    """
    where = Path(path)
    if where.is_dir():
        if any(where.rglob("*.trans.txt")):
            return read_librispeech(where)
        tables = sorted([*where.glob("*.tsv"), *where.glob("*.csv")])
        if len(tables) == 1:
            where = tables[0]
        else:
            raise DataError(
                f"{where}: neither a LibriSpeech directory (*.trans.txt) nor a folder with "
                f"one manifest (found {len(tables)} .tsv/.csv files)"
            )
    if not where.is_file():
        raise DataError(f"{where} does not exist")
    fields, _ = _table(where)
    if "sentence" in fields and "text" not in fields:
        return read_common_voice(where)
    return read_manifest(where)
