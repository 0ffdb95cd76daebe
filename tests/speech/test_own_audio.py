"""``speech-digits`` on the user's own labelled audio: folder and manifest layouts, any rate
and channel count, seeded speaker-disjoint and stratified splits, the class-balance report,
bad files (skipped and counted, or refused in one line), and the command line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

import rnnlab.api as api
from rnnlab import config as cfg
from rnnlab.cli.main import app
from rnnlab.errors import DataError
from rnnlab.speech import load_recognizer, tone_word
from rnnlab.speech.own_audio import SPLITS, Item, list_folder, read_manifest, split_items
from rnnlab.speech.settings import SpeechDigitsData

FEATURES = {"n_mfcc": 8, "n_mels": 16, "deltas": 0, "hop_ms": 20.0, "trim_db": 40.0}
LABELS = {"high": 7, "low": 0}  # label -> tone_word index (pitch 400 + 300 k Hz)


def write_take(path: Path, word: int, seed: int, rate: int, stereo: bool = False) -> Path:
    """A tone "word" at ``rate`` with silence around it, WAV or FLAC by suffix."""
    wave = tone_word(word, torch.Generator().manual_seed(seed), rate).numpy()
    wave = np.concatenate([np.zeros(rate // 10, np.float32), wave, np.zeros(rate // 8, np.float32)])
    data = np.stack([wave, 0.5 * wave], axis=1) if stereo else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, subtype="PCM_16")
    return path


def make_folder(root: Path, takes: int = 10) -> Path:
    """``root/<label>/take<i>.(wav|flac)`` at 16 kHz stereo, 44.1 kHz and 8 kHz mono."""
    for label, word in LABELS.items():
        for i in range(takes):
            rate, suffix, stereo = [
                (16000, "wav", True),
                (44100, "flac", False),
                (8000, "wav", False),
            ][i % 3]
            write_take(root / label / f"take{i}.{suffix}", word, 100 * word + i, rate, stereo)
    return root


def config(data: dict[str, Any]) -> cfg.ExperimentConfig:
    return cfg.from_dict(
        {
            "task": {"name": "speech-digits"},
            "data": {"features": FEATURES, **data},
            "model": {"cell": "gru", "hidden_size": 16, "bidirectional": True, "pooling": "mean"},
            "train": {"epochs": 4, "batch_size": 4, "lr": 0.02, "device": "cpu",
                      "num_threads": 1, "log_every_steps": 1000},
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = make_folder(tmp_path_factory.mktemp("own") / "audio")
    run = tmp_path_factory.mktemp("own") / "run"
    data = {"source": "folder", "path": str(root), "valid_fraction": 0.2, "test_fraction": 0.2}
    api.train(config(data), run_dir=run, quiet=None)
    return root, run


def test_folder_run_learns_saves_labels_and_balance(folder_run: tuple[Path, Path]) -> None:
    _, run = folder_run
    saved = cfg.load(run / "config.toml")
    assert isinstance(saved.data, SpeechDigitsData) and saved.data.labels == ["high", "low"]
    balance = json.loads((run / "class_balance.json").read_text())
    assert balance["split_by"] == "stratified" and balance["skipped"] == []
    assert balance["counts"] == {lb: {"train": 6, "valid": 2, "test": 2} for lb in LABELS}
    recognizer = load_recognizer(run)
    assert recognizer.task.words == ("high", "low")
    # a 44.1 kHz stereo file at recognize time: resampled and mixed down, with notices
    probe = write_take(run.parent / "probe.wav", LABELS["high"], 999, 44100, stereo=True)
    result = recognizer.recognize_file(probe)
    assert result["word"] == "high"
    assert any("resampled from 44100" in n for n in result["notices"])
    assert any("mixed 2 channels" in n for n in result["notices"])


def test_recognize_averages_the_posteriors_over_vtlp_warps(folder_run: tuple[Path, Path]) -> None:
    _, run = folder_run
    recognizer = load_recognizer(run)
    probe = write_take(run.parent / "probe-warps.wav", LABELS["low"], 77, 16000)
    plain = recognizer.recognize_file(probe)
    assert recognizer.recognize_file(probe, warps=[1.0])["confidence"] == pytest.approx(
        plain["confidence"], abs=1e-6
    )  # the unwarped filterbank is the plain pipeline
    each = [recognizer.recognize_file(probe, warps=[w]) for w in (0.85, 1.2)]
    both = recognizer.recognize_file(probe, warps=[0.85, 1.2])
    assert each[0]["confidence"] != pytest.approx(each[1]["confidence"], abs=1e-6)
    if each[0]["word"] == each[1]["word"]:  # then the mean posterior of that word
        mean = (each[0]["confidence"] + each[1]["confidence"]) / 2
        assert both["word"] == each[0]["word"] and both["confidence"] == pytest.approx(mean)
    with pytest.raises(ValueError, match="VTLP factors in"):
        recognizer.recognize_file(probe, warps=[0.2])


def test_cli_recognize_prints_label_names_and_bad_file_exits_2(
    folder_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run = folder_run
    good = write_take(tmp_path / "a.wav", LABELS["low"], 5, 16000)
    result = CliRunner().invoke(app, ["recognize", str(run), str(good)])
    assert result.exit_code == 0 and "low" in result.output
    warped = CliRunner().invoke(app, ["recognize", str(run), str(good), "--warps", "0.9,1.1"])
    assert warped.exit_code == 0 and "low" in warped.output
    for bad in ("0.9,abc", "0.3"):
        refused = CliRunner().invoke(app, ["recognize", str(run), str(good), "--warps", bad])
        assert refused.exit_code == 2 and "--warps" in refused.output
        assert "Traceback" not in refused.output
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt ")  # truncated header
    result = CliRunner().invoke(app, ["recognize", str(run), str(broken)])
    assert result.exit_code == 2 and "broken.wav" in result.output
    assert "Traceback" not in result.output


def test_named_split_folders_are_honoured(tmp_path: Path) -> None:
    for split, count in (("train", 4), ("valid", 2), ("test", 1)):
        for label, word in LABELS.items():
            for i in range(count):
                write_take(tmp_path / split / label / f"{i}.wav", word, i, 8000)
    items = list_folder(tmp_path)
    parts, how = split_items(items, 0.1, 0.1, seed=0)
    assert how == "named" and [len(parts[s]) for s in SPLITS] == [8, 4, 2]
    assert {i.label for i in parts["test"]} == set(LABELS)


def test_speaker_disjoint_split_is_seeded_and_disjoint() -> None:
    items = [Item(Path(f"{i}.wav"), "abc"[i % 3], f"spk{i % 9}") for i in range(180)]
    parts, how = split_items(items, 0.2, 0.2, seed=3)
    assert how == "speaker"
    speakers = [{i.speaker for i in parts[s]} for s in SPLITS]
    assert all(speakers) and not (speakers[0] & speakers[1] or speakers[0] & speakers[2])
    assert not speakers[1] & speakers[2]
    again, _ = split_items(items, 0.2, 0.2, seed=3)
    assert again == parts
    other, _ = split_items(items, 0.2, 0.2, seed=4)
    assert {i.speaker for i in other["test"]} != speakers[2]


def test_stratified_split_keeps_each_labels_share() -> None:
    items = [Item(Path(f"{i}.wav"), "ab"[i % 2]) for i in range(40)]
    parts, how = split_items(items, 0.25, 0.25, seed=0)
    assert how == "stratified"
    for split, want in (("train", 10), ("valid", 5), ("test", 5)):
        assert [i.label for i in parts[split]].count("a") == want


def test_manifest_with_speakers_and_bad_files_skipped(tmp_path: Path) -> None:
    rows = ["file\tword\tspeaker"]
    for s in range(5):
        for label, word in LABELS.items():
            for i in range(2):
                name = f"clips/s{s}_{label}_{i}.flac"
                write_take(tmp_path / name, word, 10 * s + i, 22050)
                rows.append(f"{name}\t{label}\tspk{s}")
    (tmp_path / "clips" / "empty.wav").write_bytes(b"")
    (tmp_path / "clips" / "text.wav").write_text("not audio at all")
    sf.write(tmp_path / "clips" / "silent.wav", np.zeros(4000, np.float32), 8000)
    for bad in ("empty.wav", "text.wav", "silent.wav", "missing.wav"):
        rows.append(f"clips/{bad}\thigh\tspk0")
    manifest = tmp_path / "list.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    data = {"source": "manifest", "path": str(manifest), "path_column": "file",
            "label_column": "word", "valid_fraction": 0.2, "test_fraction": 0.2}  # fmt: skip
    task = api._task_for(config(data))
    with pytest.warns(UserWarning, match="4 of 24 recordings skipped"):
        built = task.build_data()
    assert built.spec.num_classes == 2
    report = task.balance
    assert report is not None and report.split_by == "speaker"
    assert sorted(Path(f).name for f, _ in report.skipped) == [
        "empty.wav", "missing.wav", "silent.wav", "text.wav"
    ]  # fmt: skip
    # refusing instead: one line naming the first bad file
    strict = config({**data, "bad_files": "error"})
    with pytest.raises(DataError, match=r"empty\.wav.*empty") as err:
        api._task_for(strict).build_data()
    assert "\n" not in str(err.value)
    # most rows missing: a wrong base folder, refused whatever bad_files says
    manifest.write_text("\n".join(rows[:1] + [f"x/{r}" for r in rows[1:]]) + "\n")
    with pytest.raises(DataError, match=r"24 of 24 recordings are unusable"):
        api._task_for(config(data)).build_data()


def test_manifest_errors_are_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,lbl\na.wav,yes\n")
    data = SpeechDigitsData(source="manifest", path=str(manifest))
    with pytest.raises(DataError, match=r"m\.csv: no column 'label' \(data\.label_column\)"):
        read_manifest(manifest, data)
    manifest.write_text("path,label,split\na.wav,yes,dev\n")
    with pytest.raises(DataError, match="line 2: split='dev'; expected train, valid or test"):
        read_manifest(manifest, data)
    with pytest.raises(DataError, match="no such manifest file"):
        read_manifest(tmp_path / "nope.csv", data)
    with pytest.raises(DataError, match="no such folder"):
        list_folder(tmp_path / "nope")


def test_label_outside_the_configured_labels_is_refused(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "audio", takes=3)
    data = {"source": "folder", "path": str(root), "labels": ["high"]}
    with pytest.raises(DataError, match=r"label 'low' is not in data\.labels"):
        api._task_for(config(data)).build_data()


def test_cli_train_on_a_bad_manifest_exits_2(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,category\na.wav,yes\n")
    toml = tmp_path / "own.toml"
    toml.write_text(
        '[task]\nname = "speech-digits"\n[data]\nsource = "manifest"\n'
        f'path = "{manifest}"\n[train]\nepochs = 1\ndevice = "cpu"\n'
    )
    result = CliRunner().invoke(app, ["train", str(toml), "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no column 'label'" in result.output
    assert "Traceback" not in result.output
    toml.write_text('[task]\nname = "speech-digits"\n[data]\nsource = "folder"\n')
    result = CliRunner().invoke(app, ["train", str(toml), "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "data.path" in result.output
