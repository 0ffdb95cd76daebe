"""speech-sentences on a generated corpus: characters as tones in a LibriSpeech layout (also
as a Common Voice TSV and a manifest), the units, the task end to end with its LM, recognize
(greedy, LM beam, streaming equal to offline) and its bad inputs."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

import rnnlab.api as api
from rnnlab import config as cfg
from rnnlab.cli import app
from rnnlab.errors import ConfigError, DataError
from rnnlab.speech.recognize import load_recognizer, recognize
from rnnlab.speech.sentences_recognize import sentence_log_probs
from rnnlab.speech.transcripts import read_transcripts
from rnnlab.speech.units import TextUnits, check_text, normalize_text

RATE = 8000
WORDS = ["ab", "ba", "cab", "dab", "bad", "add"]
PITCH = {c: 500.0 + 400.0 * i for i, c in enumerate("abcd")}


def speak(text: str, rng: random.Random) -> torch.Tensor:
    """Each letter a 60-90 ms tone of its own pitch; a space 40 ms of silence."""
    parts = [torch.zeros(400)]
    for char in text:
        n = rng.randint(480, 720)
        if char == " ":
            parts.append(torch.zeros(320))
            continue
        t = torch.arange(n) / RATE
        envelope = torch.hann_window(n, periodic=False)
        parts.append(0.5 * envelope * torch.sin(2 * torch.pi * PITCH[char] * t))
    parts.append(torch.zeros(400))
    return torch.cat(parts)


def make_corpus(root: Path, sizes: dict[str, int], seed: int = 0) -> dict[str, list[str]]:
    """LibriSpeech layout: <split>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac."""
    rng = random.Random(seed)
    texts: dict[str, list[str]] = {}
    for s, (split, count) in enumerate(sizes.items()):
        texts[split] = []
        for speaker in range(2):
            spk = f"{s + 1}{speaker}"
            folder = root / split / spk / "1"
            folder.mkdir(parents=True)
            lines = []
            for n in range(count // 2):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
                key = f"{spk}-1-{n:04d}"
                sf.write(folder / f"{key}.flac", speak(text, rng).numpy(), RATE)
                lines.append(f"{key} {text.upper()}")
                texts[split].append(text)
            (folder / f"{spk}-1.trans.txt").write_text("\n".join(lines) + "\n")
    return texts


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sentences") / "tones-sentences"
    make_corpus(root, {"train": 48, "valid": 8, "test": 8})
    (root.parent / "lm.txt").write_text(
        "\n".join(" ".join(random.Random(i).choices(WORDS, k=3)) for i in range(200)) + "\n"
    )
    return root


def config(corpus: Path, **data: Any) -> cfg.ExperimentConfig:
    return cfg.from_dict(
        {
            "task": {"name": "speech-sentences"},
            "data": {
                "path": str(corpus),
                "stack": 2,
                "features": {"kind": "logmel", "n_mels": 16, "deltas": 0, "normalize": False},
                "lm": {
                    "text": "lm.txt",
                    "order": 2,
                    "alphas": [0.0, 0.5],
                    "betas": [0.0, 1.0],
                    "beam_width": 4,
                },
                **data,
            },
            "model": {
                "cell": "gru",
                "hidden_size": 32,
                "num_layers": 1,
                "bidirectional": False,
                "input_projection": 32,
            },
            "train": {
                "epochs": 8,
                "batch_size": 8,
                "lr": 0.01,
                "grad_clip_norm": 5.0,
                "device": "cpu",
                "num_threads": 1,
                "log_every_steps": 1000,
            },
        }
    )


@pytest.fixture(scope="module")
def run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sentences-run") / "run"
    api.train(config(corpus), run_dir=folder, quiet=None)
    return folder


def test_librispeech_common_voice_and_manifest_layouts(corpus: Path, tmp_path: Path) -> None:
    items = read_transcripts(corpus / "train")
    assert len(items) == 48 and items[0].speaker == "10" and items[0].path.suffix == ".flac"
    assert items[0].text == items[0].text.upper()
    clips = tmp_path / "cv" / "clips"
    clips.mkdir(parents=True)
    (clips / "x.flac").write_bytes(items[0].path.read_bytes())
    (tmp_path / "cv" / "train.tsv").write_text("client_id\tpath\tsentence\nspk\tx.flac\tAb, ba!\n")
    (cv,) = read_transcripts(tmp_path / "cv")
    assert cv.path == clips / "x.flac" and cv.speaker == "spk" and cv.text == "Ab, ba!"
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,text\n{items[0].path},ab ba\n")
    assert read_transcripts(manifest)[0].text == "ab ba"


def test_bad_transcripts_name_the_file_and_row(corpus: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"path\ttext\n{tmp_path / 'gone.wav'}\tab\n")
    with pytest.raises(DataError, match=r"m.tsv, row 2: audio file .*gone.wav does not exist"):
        read_transcripts(manifest)
    audio = next((corpus / "train").rglob("*.flac"))
    manifest.write_text(f"path\ttext\n{audio}\t \n")
    with pytest.raises(DataError, match=r"row 2: .* has an empty transcript"):
        read_transcripts(manifest)
    manifest.write_text("file\twords\nx\ty\n")
    with pytest.raises(DataError, match="'path' and 'text' columns"):
        read_transcripts(manifest)
    chapter = tmp_path / "ls" / "1" / "2"
    chapter.mkdir(parents=True)
    (chapter / "1-2.trans.txt").write_text("1-2-0000 HELLO\n1-2-0001\n")
    with pytest.raises(DataError, match=r"1-2.trans.txt, line 1: no audio file 1-2-0000"):
        read_transcripts(tmp_path / "ls")
    (chapter / "1-2-0000.flac").write_bytes(audio.read_bytes())
    with pytest.raises(DataError, match=r"line 2: utterance 1-2-0001 has no transcript"):
        read_transcripts(tmp_path / "ls")


def test_normalization_and_units() -> None:
    assert (
        normalize_text("Rock-and-ROLL, it\u2019s  \u201cfine\u201d.") == "rock and roll it's fine"
    )
    assert check_text("Caf\u00e9!", "a.flac") == "cafe"
    with pytest.raises(DataError, match=r"a.flac: character '7'"):
        check_text("route 7", "a.flac")
    with pytest.raises(DataError, match="empty after normalization"):
        check_text("?!", "a.flac")
    chars = TextUnits.characters()
    assert chars.num_classes == 29 and chars.decode(chars.encode("don't go")) == "don't go"
    pieces = TextUnits.train_pieces(["the cat", "the hat", "that"], 60)
    assert TextUnits.from_dict(json.loads(json.dumps(pieces.to_dict()))) == pieces
    for text in ["the cat", "what a hat", "zzz"]:
        assert pieces.decode(pieces.encode(text)) == text
    assert len(pieces.encode("the cat")) < len(chars.encode("the cat"))


def test_trains_evaluates_and_writes_run_files(run: Path) -> None:
    for name in ("units.json", "lm.arpa", "decoding.json", "features.json"):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    test = [r for r in rows if r.get("split") == "test"][-1]
    assert {"wer", "cer", "wer_lm", "cer_lm", "lm_alpha", "lm_beta"} <= set(test)
    assert test["lm_alpha"] in (0.0, 0.5) and test["lm_beta"] in (0.0, 1.0)
    first = next(r for r in rows if r.get("split") == "valid")
    assert test["cer"] < 0.5 and first["loss"] > test["loss"]  # it learnt the tones
    decoding = json.loads((run / "decoding.json").read_text())
    assert decoding["alpha"] == test["lm_alpha"]


def test_recognize_greedy_lm_and_streaming_equal_offline(run: Path, corpus: Path) -> None:
    files = sorted((corpus / "test").rglob("*.flac"))[:3]
    greedy = recognize(run, files)
    streamed = recognize(run, files, stream_ms=50.0)
    with_lm = recognize(run, files, lm=True)
    for g, s, b in zip(greedy, streamed, with_lm, strict=True):
        assert g["transcript"] == s["transcript"] and g["decoding"] == "greedy"
        assert s["latency"]["chunks"] > 3 and s["latency"]["p95_ms"] >= s["latency"]["median_ms"]
        assert b["decoding"].startswith("beam 4 + LM")
        for word in g["words"]:
            assert 0 <= word["start"] < word["end"] and 0 < word["confidence"] <= 1
    recognizer = load_recognizer(run)
    audio, _ = sf.read(files[0], dtype="float32")
    lp = sentence_log_probs(
        recognizer.task,
        recognizer.model,
        recognizer.extractor,  # type: ignore[arg-type]
        torch.from_numpy(audio),
    )
    assert lp.shape[1] == 29 and torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[0]))


def test_recognize_cli_bad_files_exit_2(run: Path, corpus: Path, tmp_path: Path) -> None:
    good = next((corpus / "test").rglob("*.flac"))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"not audio at all" * 10)
    truncated = tmp_path / "cut.flac"
    truncated.write_bytes(good.read_bytes()[:60])
    silent = tmp_path / "silent.wav"
    sf.write(silent, torch.zeros(4000).numpy(), RATE)
    args = ["recognize", str(run), str(empty), str(good), str(junk), str(truncated), str(silent)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{good}: " in result.output and "silent.wav: no speech found" in result.output
    assert "3 of 5 files failed" in result.output
    for name in ("empty.wav", "junk.flac", "cut.flac"):
        assert f"error: {tmp_path / name}" in result.output


def test_speed_and_noise_augment_train_batches_reproducibly(corpus: Path) -> None:
    augment = {"speed": [0.8, 0.85], "noise_snr_db": [20.0, 30.0]}
    plain = api._task_for(config(corpus)).build_data()
    noisy = api._task_for(config(corpus, augment=augment)).build_data()
    again = api._task_for(config(corpus, augment=augment)).build_data()
    first, second, base = (next(iter(d.train.batches())) for d in (noisy, again, plain))
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)  # same seed, epoch and batch: the same augmentation
    # slower by 0.8-0.85: every utterance gets 1/0.85-1/0.8 times its frames
    ratio = first[1].double() / base[1].double()
    assert bool(((ratio > 1.1) & (ratio < 1.3)).all()), ratio
    assert torch.equal(first[2], base[2])  # the targets are untouched
    valid = (next(iter(d.valid.batches())) for d in (noisy, plain))
    assert all(torch.equal(a, b) for a, b in zip(*valid, strict=True))


def test_bad_settings_are_one_line_errors(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="speed"):
        config(corpus, augment={"speed": [0.3, 1.0]})
    with pytest.raises(DataError, match="does not exist"):
        api.train(config(tmp_path / "nowhere"), run_dir=tmp_path / "r", quiet=None)


def test_sentences_recipe_validates_with_its_budget_and_decoder() -> None:
    from rnnlab import config

    cfg = config.load("speech-sentences")
    assert cfg.train.time_budget_seconds == 45 * 60 and cfg.train.schedule.kind == "budget"
    assert cfg.data.lm.lexicon and cfg.data.lm.beam_width == 32
    assert cfg.data.augment.speed == (0.9, 1.1) and cfg.data.augment.waveform
