"""Sampling text from a trained language model, one token at a time.

The prompt is fed through the model once; then each step draws the next token from
``softmax(logits / temperature)``, restricted to the ``top_k`` most likely tokens when given,
and feeds it back with the carried state::

    prompt p1 p2 p3 --model--> logits_3 --sample--> t1 --model--> logits --sample--> t2 ...

Sampling uses its own ``torch.Generator``, so a given ``seed`` gives the same tokens whatever
else the program draws. The model runs in eval mode and without gradients during each step
only; between steps (while the caller holds the stream) its mode is left as it was.

Example:
    >>> from rnnlab.data.text import Vocabulary
    >>> from rnnlab.language.model import LanguageModel
    >>> vocab = Vocabulary.build(list("abcab"), level="char")
    >>> model = LanguageModel(len(vocab), 8, "gru", hidden_size=8)
    >>> tokens = list(generate(model, vocab, "ab", length=5, seed=0))
    >>> len(tokens), tokens == list(generate(model, vocab, "ab", length=5, seed=0))
    (5, True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from rnnlab.data.text import Vocabulary, detokenize, tokenize
from rnnlab.language.model import LanguageModel, State

MAX_TEMPERATURE = 100.0


def _check_options(length: int, temperature: float, top_k: int | None, vocab_size: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or not 0.0 < temperature <= MAX_TEMPERATURE
    ):
        raise ValueError(f"temperature must lie in (0, {MAX_TEMPERATURE}], got {temperature!r}")
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= vocab_size
    ):
        raise ValueError(f"top_k must be an integer in [1, {vocab_size}] or None, got {top_k!r}")


def sample(
    model: LanguageModel,
    prompt: Sequence[int] | Tensor,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    unk_index: int | None = None,
) -> Iterator[int]:
    """Stream ``length`` sampled token ids that continue ``prompt``.

    Options are checked when this is called, before the first token is asked for.

    Args:
        model: the language model.
        prompt: token ids to start from (at least one).
        length: how many tokens to generate (>= 1).
        temperature: divides the logits; below 1 sharpens, above 1 flattens (0 < t <= 100).
        top_k: sample only among the ``k`` most likely tokens.
        seed: seed of the sampling generator; ``None`` draws a fresh one.
        unk_index: ids outside ``[0, V)`` in the prompt map to it, with a warning; without it
            they are a ``ValueError``.

    Returns:
        A generator of token ids.
    """
    vocab_size = model.vocab_size
    _check_options(length, temperature, top_k, vocab_size)
    ids = prompt.tolist() if isinstance(prompt, Tensor) else list(prompt)
    if not ids:
        raise ValueError("prompt must hold at least one token id")
    bad = [i for i in ids if not isinstance(i, int) or not 0 <= i < vocab_size]
    if bad:
        if unk_index is None:
            raise ValueError(f"prompt ids must lie in [0, {vocab_size}), got {bad[:5]}")
        warnings.warn(
            f"{len(bad)} prompt id(s) outside [0, {vocab_size}) mapped to <unk>: {bad[:5]}",
            stacklevel=2,
        )
        ids = [i if isinstance(i, int) and 0 <= i < vocab_size else unk_index for i in ids]
    return _stream(model, ids, length, float(temperature), top_k, seed)


def _stream(
    model: LanguageModel,
    ids: list[int],
    length: int,
    temperature: float,
    top_k: int | None,
    seed: int | None,
) -> Iterator[int]:
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    tokens = torch.tensor(ids, dtype=torch.long, device=device)
    state: State | None = None
    for _ in range(length):
        logits, state = _step(model, tokens, state)  # (V,)
        logits = logits / temperature
        if top_k is not None and top_k < logits.numel():
            threshold = torch.topk(logits, top_k).values[-1]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        probs = torch.softmax(logits.double(), dim=-1)  # float64: stable sums at low temperature
        token = int(torch.multinomial(probs, 1, generator=generator))
        yield token
        tokens = torch.tensor([token], dtype=torch.long, device=device)


def _step(model: LanguageModel, tokens: Tensor, state: State | None) -> tuple[Tensor, State]:
    """Feed ``tokens`` (1-D) through the model in eval mode; last position's logits."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            batch = tokens[None, :] if model.batch_first else tokens[:, None]  # (1, T) / (T, 1)
            logits, state = model(batch, state)
        last = logits[0, -1] if model.batch_first else logits[-1, 0]  # (V,)
        return last.float(), state
    finally:
        model.train(was_training)


def generate(
    model: LanguageModel,
    vocab: Vocabulary,
    prompt: str | Sequence[str],
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> Iterator[str]:
    """Stream ``length`` sampled tokens (strings) that continue a text prompt.

    Args:
        model: the language model, trained with ``vocab``.
        vocab: its vocabulary; a text prompt is tokenized at ``vocab.level``.
        prompt: text, or a list of tokens. Tokens not in the vocabulary become ``<unk>``
            with a warning. An empty prompt starts after ``<eos>`` (a new line) when the
            vocabulary has one, else it is an error.
        length: how many tokens to generate.
        temperature, top_k, seed: as in :func:`sample`.
    """
    if len(vocab) != model.vocab_size:
        raise ValueError(
            f"vocabulary has {len(vocab)} tokens but the model predicts {model.vocab_size}"
        )
    tokens = _prompt_tokens(prompt, vocab) if isinstance(prompt, str) else list(prompt)
    if not tokens:
        if vocab.eos is None:
            raise ValueError("an empty prompt needs a vocabulary with <eos>; give a prompt")
        tokens = [vocab.eos]
    unknown = [t for t in tokens if t not in vocab]
    if unknown:
        warnings.warn(
            f"{len(unknown)} prompt token(s) not in the vocabulary mapped to {vocab.unk!r}: "
            f"{unknown[:5]}",
            stacklevel=2,
        )
    ids = [vocab.index(t) for t in tokens]
    stream = sample(model, ids, length, temperature=temperature, top_k=top_k, seed=seed)
    return (vocab.tokens[i] for i in stream)


def generate_text(
    model: LanguageModel,
    vocab: Vocabulary,
    prompt: str,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> str:
    """The prompt and ``length`` sampled tokens, as readable text (see :func:`generate`)."""
    stream = generate(model, vocab, prompt, length, temperature=temperature, top_k=top_k, seed=seed)
    return detokenize(_prompt_tokens(prompt, vocab) + list(stream), vocab.level)


def _prompt_tokens(prompt: str, vocab: Vocabulary) -> list[str]:
    """Tokens of a text prompt; for line-based levels no ``<eos>`` after an open last line."""
    tokens = tokenize(prompt, vocab.level)
    if vocab.eos is not None and tokens and not prompt.endswith("\n"):
        tokens = tokens[:-1]  # the prompt's last line continues
    return tokens
