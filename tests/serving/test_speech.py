"""``rnnlab.load`` and the HTTP API for speech runs: ``/recognize`` on an uploaded recording
gives ``rnnlab.recognize``'s answer for the same file; uploads that are not audio, empty,
too long or missing are 4xx JSON naming the field."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from tests.cli.test_recognize import RATE, train, utterance
from tests.serving.helpers import at_once, error_of, served

import rnnlab
from rnnlab.serving import RequestError, SpeechPredictor

CTC_DATA = {
    "train_utterances": 32,
    "valid_utterances": 8,
    "test_utterances": 8,
    "max_digits": 3,
    "silence_ms": [30.0, 120.0],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-speech")
    return {
        "digits": train(root / "digits", "speech-digits", {}, 2),
        "ctc": train(root / "ctc", "speech-ctc", CTC_DATA, 1),
    }


@pytest.fixture(scope="module")
def predictors(runs: dict[str, Path]) -> dict[str, SpeechPredictor]:
    loaded = {kind: rnnlab.load(path) for kind, path in runs.items()}
    assert all(isinstance(p, SpeechPredictor) for p in loaded.values())
    return loaded  # type: ignore[return-value]


@pytest.fixture(scope="module")
def clients(predictors: dict[str, SpeechPredictor]) -> Iterator[dict[str, httpx.Client]]:
    with (
        served(predictors["digits"], max_body_bytes=96 * 1024) as digits,
        served(predictors["ctc"]) as ctc,
    ):
        yield {"digits": digits, "ctc": ctc}


def wav(words: list[int], seed: int = 3, silence_s: float = 0.1) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, utterance(words, seed=seed, silence_s=silence_s), RATE, format="WAV")
    return buffer.getvalue()


def upload(
    client: httpx.Client, data: bytes, name: str = "clip.wav", **form: Any
) -> httpx.Response:
    return client.post("/recognize", files={"file": (name, data, "audio/wav")}, data=form)


def expected(
    run: Path, data: bytes, folder: Path, name: str = "clip.wav", beam: int = 1
) -> dict[str, Any]:
    path = folder / name
    path.write_bytes(data)
    [result] = rnnlab.recognize(run, [path], beam_width=beam)
    return {**result, "file": name}


def test_load_gives_the_speech_predictors(
    predictors: dict[str, SpeechPredictor], runs: dict[str, Path], tmp_path: Path
) -> None:
    assert predictors["digits"].task == "speech-digits" and predictors["ctc"].task == "speech-ctc"
    data = wav([2], seed=4, silence_s=0.0)
    assert predictors["digits"].recognize(data, "clip.wav") == expected(
        runs["digits"], data, tmp_path
    )
    with pytest.raises(RequestError, match="not") as caught:
        predictors["digits"].recognize(b"this is not audio\n", "notes.wav")
    assert caught.value.field == "file" and "rnnlab-serve-" not in str(caught.value)


def test_health(clients: dict[str, httpx.Client]) -> None:
    body = clients["ctc"].get("/health").json()
    assert body["task"] == "speech-ctc" and body["routes"] == ["/health", "/recognize"]
    assert body["sample_rate"] == RATE and body["max_seconds"] == 3.0


def test_recognize_matches_the_python_form(
    clients: dict[str, httpx.Client], runs: dict[str, Path], tmp_path: Path
) -> None:
    isolated = wav([2], seed=4, silence_s=0.0)
    answer = upload(clients["digits"], isolated)
    assert answer.status_code == 200, answer.text
    assert answer.json() == expected(runs["digits"], isolated, tmp_path)
    sentence = wav([1, 2])
    for beam in (1, 4):
        answer = upload(clients["ctc"], sentence, "one_two.wav", beam=str(beam))
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected(runs["ctc"], sentence, tmp_path, "one_two.wav", beam)
        assert {"transcript", "digits", "words", "log_prob"} <= set(answer.json())


def test_a_silent_recording_is_an_answer(clients: dict[str, httpx.Client]) -> None:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(RATE, dtype=np.float32), RATE, format="WAV")
    body = upload(clients["digits"], buffer.getvalue(), "silent.wav").json()
    assert body["speech"] is False and body["digit"] is None
    assert any("no speech found in silent.wav" in n for n in body["notices"])


def test_uploads_that_are_not_usable_audio_are_422_naming_the_file(
    clients: dict[str, httpx.Client],
) -> None:
    client = clients["digits"]
    text = error_of(upload(client, b"this is not audio\n", "notes.wav"), 422, "file")
    assert "notes.wav" in text and "rnnlab-serve-" not in text
    assert "empty" in error_of(upload(client, b"", "empty.wav"), 422, "file")
    noise = io.BytesIO()
    sf.write(noise, np.zeros(4 * RATE, dtype=np.float32), RATE, format="WAV")  # over 3 s
    error_of(upload(clients["ctc"], noise.getvalue(), "long.wav"), 422, "file")
    short = io.BytesIO()
    sf.write(short, np.full(5, 0.3, dtype=np.float32), RATE, format="WAV")
    error_of(upload(client, short.getvalue(), "short.wav"), 422, "file")


def test_missing_upload_bad_beam_and_oversized_bodies(clients: dict[str, httpx.Client]) -> None:
    client = clients["digits"]
    error_of(client.post("/recognize", data={"beam": "1"}), 422, "file")
    error_of(client.post("/recognize", json={"file": "clip.wav"}), 422, "file")
    error_of(upload(client, wav([1]), beam="wide"), 422, "beam")
    error_of(upload(client, wav([1]), beam="0"), 422, "beam")
    big = io.BytesIO()
    sf.write(big, np.zeros(4 * RATE, dtype=np.float32), RATE, format="WAV", subtype="FLOAT")
    error_of(upload(client, big.getvalue(), "big.wav"), 413, None)


def test_upload_names_cannot_escape_the_temporary_folder(clients: dict[str, httpx.Client]) -> None:
    body = upload(clients["digits"], wav([2], silence_s=0.0), "../../x/../clip.wav").json()
    assert body["file"] == "../../x/../clip.wav" and "digit" in body


def test_concurrent_uploads_are_all_answered_correctly(
    clients: dict[str, httpx.Client], predictors: dict[str, SpeechPredictor]
) -> None:
    clips = [wav([i % 3], seed=10 + i, silence_s=0.0) for i in range(8)]

    def ask(i: int) -> dict[str, Any]:
        answer = upload(clients["digits"], clips[i], f"clip{i}.wav")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    answers = at_once(ask, 8)
    for i, answer in enumerate(answers):
        assert answer == predictors["digits"].recognize(clips[i], f"clip{i}.wav")
