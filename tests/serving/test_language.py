"""``rnnlab.load`` and the HTTP API for a language run: ``/generate`` gives the text
``rnnlab.generate`` gives with the same seed; bad bodies are 4xx JSON naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.language.helpers import base_config, write_corpus
from tests.serving.helpers import at_once, error_of, post_json_text, served

import rnnlab
from rnnlab import api
from rnnlab.errors import UserError
from rnnlab.serving import LanguagePredictor, RequestError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-lm")
    run = root / "run"
    api.train(base_config(write_corpus(root / "corpus"), "train.epochs=3"), run_dir=run, quiet=None)
    return run


@pytest.fixture(scope="module")
def predictor(run_dir: Path) -> LanguagePredictor:
    loaded = rnnlab.load(run_dir)
    assert isinstance(loaded, LanguagePredictor)
    return loaded


@pytest.fixture(scope="module")
def client(predictor: LanguagePredictor) -> Iterator[httpx.Client]:
    with served(predictor, max_body_bytes=4096) as http:
        yield http


def expected(run_dir: Path, prompt: str, length: int, seed: int, **options: object) -> str:
    return "".join(rnnlab.generate(run_dir, prompt, length, seed=seed, **options))  # type: ignore[arg-type]


def test_load_gives_the_language_predictor(predictor: LanguagePredictor, run_dir: Path) -> None:
    answer = predictor.generate("the cat", 8, seed=5)
    assert answer["text"] == expected(run_dir, "the cat", 8, 5)
    assert answer["tokens"] == 8 and answer["notices"] == []
    described = predictor.describe()
    assert described["task"] == "language" and described["checkpoint"] == "best.pt"
    with pytest.raises(RequestError, match="top_k must lie in") as caught:
        predictor.generate("the", 3, top_k=10_000)
    assert caught.value.field == "top_k"
    with pytest.raises(UserError, match="checkpoint 'first' is not allowed"):
        rnnlab.load(run_dir, checkpoint="first")


def test_health(client: httpx.Client, run_dir: Path) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["task"] == "language"
    assert body["routes"] == ["/health", "/generate"] and body["run_dir"] == str(run_dir)


def test_generate_matches_the_python_form_with_the_same_seed(
    client: httpx.Client, run_dir: Path
) -> None:
    request = {"prompt": "the dog", "length": 12, "temperature": 0.8, "top_k": 5, "seed": 11}
    answer = client.post("/generate", json=request)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["text"] == expected(run_dir, "the dog", 12, 11, temperature=0.8, top_k=5)
    assert body["prompt"] == "the dog" and body["seed"] == 11 and body["notices"] == []


def test_unknown_prompt_words_are_a_notice(client: httpx.Client) -> None:
    body = client.post("/generate", json={"prompt": "the zebra", "length": 3, "seed": 1}).json()
    assert any("zebra" in notice for notice in body["notices"]), body


def test_malformed_json_is_400_naming_the_body(client: httpx.Client) -> None:
    message = error_of(post_json_text(client, "/generate", '{"prompt": "the", '), 400, "body")
    assert message.startswith("malformed JSON")


@pytest.mark.parametrize(
    ("request_body", "field", "words"),
    [
        ({"prompt": "the", "length": "many"}, "length", "integer"),
        ({"prompt": "the", "length": 0}, "length", "greater than or equal to 1"),
        ({"prompt": 3}, "prompt", "string"),
        ({"temperature": 0}, "temperature", "greater than 0"),
        ({"top_k": 10_000, "seed": 1}, "top_k", "top_k must lie in"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"prompt": "the", "colour": "red"}, "colour", "Extra inputs"),
        ([1, 2], "body", "dictionary"),
    ],
)
def test_bad_fields_are_422_naming_the_field(
    client: httpx.Client, request_body: object, field: str, words: str
) -> None:
    assert words in error_of(client.post("/generate", json=request_body), 422, field)


def test_an_oversized_body_is_413(client: httpx.Client) -> None:
    error_of(client.post("/generate", json={"prompt": "the " * 2000}), 413, None)
    # without a Content-Length (chunked), counted as it arrives
    chunks = iter([b'{"prompt": "', b"x" * 5000, b'"}'])
    answer = client.post("/generate", content=chunks, headers={"content-type": "application/json"})
    assert "larger than the limit of 4096 bytes" in error_of(answer, 413, "body")


def test_unknown_routes_and_methods_are_json(client: httpx.Client) -> None:
    assert "/generate" in error_of(client.post("/forecast", json={}), 404, None)
    error_of(client.get("/generate"), 405, None)


def test_concurrent_requests_are_all_answered_correctly(
    client: httpx.Client, run_dir: Path
) -> None:
    def ask(i: int) -> str:
        answer = client.post("/generate", json={"prompt": "the", "length": 10, "seed": i})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["text"])

    texts = at_once(ask, 8)
    assert texts == [expected(run_dir, "the", 10, i) for i in range(8)]
