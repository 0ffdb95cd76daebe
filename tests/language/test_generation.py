"""Sampling from a LanguageModel: seeds, top-k, temperature, streaming, prompts, bad options."""

from __future__ import annotations

import itertools
import types
import warnings

import pytest
import torch

from rnnlab.data.text import Vocabulary
from rnnlab.language.generation import generate, generate_text, sample
from rnnlab.language.model import LanguageModel


def _model(vocab_size: int = 12, batch_first: bool = False) -> LanguageModel:
    torch.manual_seed(0)
    model = LanguageModel(vocab_size, 8, "gru", hidden_size=16, batch_first=batch_first)
    with torch.no_grad():
        model.decoder.weight.mul_(30)  # peaked enough that seeds and top-k visibly matter
    return model


def _greedy(model: LanguageModel, prompt: list[int], length: int) -> list[int]:
    model.eval()
    tokens, out = list(prompt), []
    with torch.no_grad():
        for _ in range(length):
            logits, _ = model(torch.tensor(tokens)[:, None])  # (T, 1, V), no state reuse
            out.append(int(logits[-1, 0].argmax()))
            tokens.append(out[-1])
    return out


def test_same_seed_same_tokens() -> None:
    model = _model()
    a = list(sample(model, [1, 2], 30, seed=7))
    b = list(sample(model, [1, 2], 30, seed=7))
    c = list(sample(model, [1, 2], 30, seed=8))
    assert a == b
    assert a != c
    torch.manual_seed(123)  # the global generator does not matter
    assert list(sample(model, [1, 2], 30, seed=7)) == a


def test_top_k_one_is_greedy_and_matches_a_stateless_rerun() -> None:
    for batch_first in (False, True):
        model = _model(batch_first=batch_first)
        got = list(sample(model, [3, 4, 5], 12, top_k=1, seed=0))
        expected = _greedy(_model(), [3, 4, 5], 12)  # same weights, time-first, full reruns
        assert got == expected


def test_low_temperature_approaches_greedy_and_top_k_limits_choices() -> None:
    model = _model()
    greedy = list(sample(model, [1], 15, top_k=1))
    assert list(sample(model, [1], 15, temperature=1e-3, seed=3)) == greedy
    with torch.no_grad():
        logits, _ = model.eval()(torch.tensor([[1]]))
    top3 = set(torch.topk(logits[-1, 0], 3).indices.tolist())
    firsts = {next(sample(model, [1], 1, top_k=3, temperature=50.0, seed=s)) for s in range(40)}
    assert firsts <= top3 and len(firsts) > 1


def test_streaming_and_mode_restored() -> None:
    model = _model().train()
    stream = sample(model, [1], 1000, seed=0)
    assert isinstance(stream, types.GeneratorType)
    first = list(itertools.islice(stream, 3))
    assert len(first) == 3
    assert model.training  # eval only inside each step
    assert torch.is_grad_enabled()  # no_grad does not leak while the stream is paused
    stream.close()


def test_text_generation_with_vocabulary_and_unknown_prompt_tokens() -> None:
    vocab = Vocabulary.build(["the", "cat", "sat", "on", "the", "mat", "<eos>"], level="word")
    model = _model(len(vocab))
    with pytest.warns(UserWarning, match=r"1 prompt token\(s\) not in the vocabulary.*'dog'"):
        tokens = list(generate(model, vocab, "the dog", 5, seed=1))
    assert len(tokens) == 5 and all(t in vocab for t in tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same_as_unk = list(generate(model, vocab, ["the", "<unk>"], 5, seed=1))
    assert same_as_unk == tokens
    text = generate_text(model, vocab, "the cat", 4, seed=2)
    assert text.startswith("the cat")
    assert list(generate(model, vocab, "", 3, seed=0))  # empty prompt: starts after <eos>


def test_out_of_range_prompt_ids() -> None:
    model = _model()
    with pytest.raises(ValueError, match=r"prompt ids must lie in \[0, 12\), got \[12, -1\]"):
        sample(model, [1, 12, -1], 3)
    with pytest.warns(UserWarning, match="2 prompt id"):
        out = list(sample(model, [1, 12, -1], 3, unk_index=0, seed=0))
    assert out == list(sample(model, [1, 0, 0], 3, seed=0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 0}, "length must be an integer >= 1, got 0"),
        ({"length": 2.5}, "length must be an integer >= 1"),
        ({"temperature": 0.0}, r"temperature must lie in \(0, 100.0\], got 0.0"),
        ({"temperature": float("nan")}, "temperature must lie in"),
        ({"temperature": 1000.0}, "temperature must lie in"),
        ({"top_k": 0}, r"top_k must be an integer in \[1, 12\] or None, got 0"),
        ({"top_k": 13}, "top_k must be an integer in"),
    ],
)
def test_bad_options_fail_at_call_time(kwargs: dict[str, object], message: str) -> None:
    options: dict[str, object] = {"length": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        sample(_model(), [1], **options)  # type: ignore[arg-type]


def test_empty_prompt_and_vocabulary_mismatch() -> None:
    model = _model()
    with pytest.raises(ValueError, match="at least one token id"):
        sample(model, [], 3)
    chars = Vocabulary.build("abc", level="char")
    with pytest.raises(ValueError, match="vocabulary has 4 tokens but the model predicts 12"):
        generate(model, chars, "a", 3)
    small = _model(len(chars))
    with pytest.raises(ValueError, match="empty prompt needs a vocabulary with <eos>"):
        generate(small, chars, "", 3)
