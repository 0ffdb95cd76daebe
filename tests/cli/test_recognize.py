"""``rnnlab recognize`` end to end: tiny runs trained on generated tones, generated WAV files,
JSON with word times, each bad input (one-line errors, exit code 2, the batch goes on), and
silent recordings ("no speech found", exit code 0) next to quiet real ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import typer
from typer.testing import CliRunner

import rnnlab.api as api
from rnnlab import config as cfg
from rnnlab.cli.recognize import format_result, register
from rnnlab.speech import recognize, tone_word

RATE = 8000
WORDS = ("zero", "one", "two")


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(make_app(), ["recognize", *args])


def train(folder: Path, task: str, data: dict[str, Any], epochs: int) -> Path:
    config = cfg.from_dict(
        {
            "task": {"name": task},
            "data": {
                "source": "tones",
                "max_seconds": 3.0,
                "features": {"n_mfcc": 8, "n_mels": 16, "deltas": 0, "hop_ms": 20.0},
                "tones": {"words": 3, "train_samples": 48, "valid_samples": 24},
                **data,
            },
            "model": {"cell": "gru", "hidden_size": 24, "bidirectional": True, "pooling": "mean"},
            "train": {
                "epochs": epochs,
                "batch_size": 16,
                "lr": 0.02,
                "grad_clip_norm": 5.0,
                "device": "cpu",
                "num_threads": 1,
                "log_every_steps": 1000,
            },
        }
    )
    api.train(config, run_dir=folder, quiet=None)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("recognize")
    ctc_data = {
        "train_utterances": 96,
        "valid_utterances": 16,
        "test_utterances": 16,
        "max_digits": 3,
        "silence_ms": [30.0, 120.0],
    }
    return {
        "digits": train(root / "digits", "speech-digits", {}, 6),
        "ctc": train(root / "ctc", "speech-ctc", ctc_data, 15),
    }


def utterance(words: list[int], seed: int = 3, silence_s: float = 0.1) -> np.ndarray:
    """Tones for ``words`` with ``silence_s`` of silence around each (isolated words as in
    training: none)."""
    generator = torch.Generator().manual_seed(seed)
    silence = torch.zeros(round(RATE * silence_s))
    pieces = [silence]
    for word in words:
        pieces += [tone_word(word, generator, RATE), silence]
    return torch.cat(pieces).numpy()


def at_dbfs(samples: np.ndarray, peak_db: float) -> np.ndarray:
    """``samples`` scaled to a peak of ``peak_db`` dBFS (a quiet but real recording)."""
    return (samples / np.abs(samples).max() * 10 ** (peak_db / 20)).astype(np.float32)


@pytest.fixture
def wavs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "one_two": tmp_path / "one_two.wav",
        "two": tmp_path / "two.wav",
        "text": tmp_path / "notes.wav",
        "empty": tmp_path / "empty.wav",
        "long": tmp_path / "long.wav",
        "stereo16k": tmp_path / "stereo16k.wav",
        "isolated": tmp_path / "isolated.wav",
        "silent": tmp_path / "silent.wav",
        "hiss": tmp_path / "hiss.wav",
        "quiet_isolated": tmp_path / "quiet_isolated.wav",
        "quiet_two": tmp_path / "quiet_two.wav",
        "short": tmp_path / "short.wav",
    }
    sf.write(files["one_two"], utterance([1, 2]), RATE)
    sf.write(files["two"], utterance([2]), RATE)
    sf.write(files["isolated"], utterance([2], seed=4, silence_s=0.0), RATE)
    files["text"].write_text("this is not audio\n")
    files["empty"].write_bytes(b"")
    sf.write(files["long"], np.zeros(4 * RATE, dtype=np.float32), RATE)  # max_seconds is 3
    sf.write(files["silent"], np.zeros(RATE, dtype=np.float32), RATE)
    hiss = 10 ** (-70 / 20) * np.random.default_rng(0).uniform(-1, 1, RATE)  # peak -70 dBFS
    sf.write(files["hiss"], hiss.astype(np.float32), RATE)
    sf.write(files["quiet_isolated"], at_dbfs(utterance([2], seed=4, silence_s=0.0), -40), RATE)
    sf.write(files["quiet_two"], at_dbfs(utterance([2]), -40), RATE)
    sf.write(files["short"], np.full(5, 0.3, dtype=np.float32), RATE)  # a window is 200
    # two channels at 16 kHz: converted (mixed to mono, resampled), with notices
    mono = utterance([0], seed=5, silence_s=0.0)
    up = np.interp(np.arange(2 * mono.size) / 2, np.arange(mono.size), mono).astype(np.float32)
    sf.write(files["stereo16k"], np.stack([up, up], axis=1), 2 * RATE)
    return files


def test_ctc_transcripts_greedy_and_beam(runs: dict[str, Path], wavs: dict[str, Path]) -> None:
    for extra in ([], ["--beam", "4"]):
        result = invoke(str(runs["ctc"]), str(wavs["one_two"]), str(wavs["two"]), *extra)
        assert result.exit_code == 0, result.output
        lines = result.stdout.strip().splitlines()
        assert lines == [f"{wavs['one_two']}: one two", f"{wavs['two']}: two"]


def test_json_has_word_times_from_the_alignment(
    runs: dict[str, Path], wavs: dict[str, Path]
) -> None:
    result = invoke(str(runs["ctc"]), str(wavs["one_two"]), "--json", "--beam", "4")
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert entry["transcript"] == "one two" and entry["digits"] == [1, 2]
    first, second = entry["words"]
    assert [first["word"], second["word"]] == ["one", "two"]
    assert 0.0 <= first["start"] < first["end"] <= second["start"] < second["end"]
    assert second["end"] <= entry["seconds"] + 0.05
    # the first tone starts after 0.1 s of silence and lasts 0.12-0.3 s
    assert 0.0 <= first["start"] <= 0.45 and second["start"] >= 0.2


def test_digit_and_confidence(runs: dict[str, Path], wavs: dict[str, Path]) -> None:
    result = invoke(str(runs["digits"]), str(wavs["isolated"]))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{wavs['isolated']}: 2 (two, confidence ")
    (entry,) = recognize(runs["digits"], [wavs["isolated"]])
    assert entry["digit"] == 2 and 0.5 < entry["confidence"] <= 1.0


def test_conversions_are_notices_not_errors(runs: dict[str, Path], wavs: dict[str, Path]) -> None:
    result = invoke(str(runs["digits"]), str(wavs["stereo16k"]))
    assert result.exit_code == 0, result.output
    assert "notice: stereo16k.wav: mixed 2 channels to mono" in result.stderr
    assert "resampled from 16000 Hz to 8000 Hz" in result.stderr
    assert result.stdout.startswith(f"{wavs['stereo16k']}: 0 (zero,")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("text", "not a readable audio file"),
        ("empty", "the file is empty"),
        ("long", "more than max_seconds=3.0"),
        ("missing", "no such audio file"),
    ],
)
def test_bad_file_is_one_line_and_the_batch_goes_on(
    runs: dict[str, Path], wavs: dict[str, Path], tmp_path: Path, name: str, message: str
) -> None:
    bad = wavs.get(name, tmp_path / "missing.wav")
    result = invoke(str(runs["ctc"]), str(wavs["two"]), str(bad), str(wavs["one_two"]))
    assert result.exit_code == 2
    assert result.stdout.strip().splitlines() == [
        f"{wavs['two']}: two",
        f"{wavs['one_two']}: one two",
    ]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and str(bad) in errors[0]
    assert "Traceback" not in result.output


def test_json_reports_the_failed_file(runs: dict[str, Path], wavs: dict[str, Path]) -> None:
    result = invoke(str(runs["ctc"]), str(wavs["text"]), str(wavs["two"]), "--json")
    assert result.exit_code == 2
    bad, good = json.loads(result.stdout)
    assert "not a readable audio file" in bad["error"] and good["transcript"] == "two"


def test_max_seconds_option(runs: dict[str, Path], wavs: dict[str, Path]) -> None:
    result = invoke(str(runs["ctc"]), str(wavs["one_two"]), "--max-seconds", "0.2")
    assert result.exit_code == 2 and "more than max_seconds=0.2" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--beam", "0"], "beam width must be >= 1, got 0"),
        (["--checkpoint", "first"], "--checkpoint 'first' is not allowed"),
    ],
)
def test_bad_options_are_one_line_errors(
    runs: dict[str, Path], wavs: dict[str, Path], args: list[str], message: str
) -> None:
    result = invoke(str(runs["ctc"]), str(wavs["two"]), *args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.strip().count("\n") == 0


def test_not_a_run_directory(tmp_path: Path, wavs: dict[str, Path]) -> None:
    result = invoke(str(tmp_path), str(wavs["two"]))
    assert result.exit_code == 2
    assert "is not a run directory" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_format_result_lines() -> None:
    assert format_result({"file": "x.wav", "transcript": ""}) == "x.wav: (nothing recognized)"
    assert format_result({"file": "x.wav", "error": "bad"}) == "x.wav: error: bad"
    assert WORDS[1] in format_result({"file": "a", "transcript": "one"})


@pytest.mark.parametrize("kind", ["digits", "ctc"])
@pytest.mark.parametrize(("name", "peak"), [("silent", "-inf"), ("hiss", "-69.9")])
def test_silence_is_no_speech_not_a_digit(
    runs: dict[str, Path], wavs: dict[str, Path], kind: str, name: str, peak: str
) -> None:
    # hiss: a -70 dBFS peak, -69.9 once written as 16-bit PCM
    notice = f"no speech found in {name}.wav (peak {peak} dBFS, below the -60 dBFS"
    (entry,) = recognize(runs[kind], [wavs[name]])
    assert entry["speech"] is False and "error" not in entry
    assert len(entry["notices"]) == 1 and entry["notices"][0].startswith(notice)
    if kind == "digits":
        assert entry["digit"] is None and entry["word"] is None and entry["confidence"] is None
    else:
        assert entry["transcript"] == "" and entry["digits"] == [] and entry["words"] == []
    result = invoke(str(runs[kind]), str(wavs[name]))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{wavs[name]}: no speech found"
    assert f"notice: {notice}" in result.stderr
    result = invoke(str(runs[kind]), str(wavs[name]), "--json")
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)  # strict JSON: no -Infinity
    assert entry["speech"] is False and entry["notices"][0].startswith(notice)
    assert entry["peak_dbfs"] == (None if peak == "-inf" else float(peak))
    assert entry["digit" if kind == "digits" else "transcript"] in (None, "")


def test_quiet_real_recordings_are_recognized(runs: dict[str, Path], wavs: dict[str, Path]) -> None:
    """-40 dBFS is quiet but real: recognized as at full level, no silence notice."""
    digit, transcript = (
        recognize(runs["digits"], [wavs["quiet_isolated"]])[0],
        recognize(runs["ctc"], [wavs["quiet_two"]])[0],
    )
    for entry in (digit, transcript):
        assert entry["speech"] is True and entry["notices"] == []
        assert entry["peak_dbfs"] == pytest.approx(-40.0, abs=0.2)  # 16-bit PCM
    assert digit["digit"] == 2 and transcript["transcript"] == "two"


def test_silence_in_a_batch_keeps_exit_code_0_unless_a_file_failed(
    runs: dict[str, Path], wavs: dict[str, Path]
) -> None:
    result = invoke(str(runs["ctc"]), str(wavs["two"]), str(wavs["silent"]))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == [
        f"{wavs['two']}: two",
        f"{wavs['silent']}: no speech found",
    ]
    result = invoke(str(runs["ctc"]), str(wavs["silent"]), str(wavs["text"]))
    assert result.exit_code == 2
    assert result.stdout.strip() == f"{wavs['silent']}: no speech found"


@pytest.mark.parametrize("kind", ["digits", "ctc"])
def test_shorter_than_one_frame_is_a_one_line_error(
    runs: dict[str, Path], wavs: dict[str, Path], kind: str
) -> None:
    result = invoke(str(runs[kind]), str(wavs["short"]), str(wavs["two"]))
    assert result.exit_code == 2
    assert len(result.stdout.strip().splitlines()) == 1  # the batch goes on
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {wavs['short']}: the recording is 5 samples (0.6 ms) long, shorter than one "
        "feature window (200 samples, 25 ms); too short to recognize"
    ]
    assert "Traceback" not in result.output


def test_format_no_speech() -> None:
    line = format_result({"file": "s.wav", "speech": False, "transcript": "", "digits": []})
    assert line == "s.wav: no speech found"
