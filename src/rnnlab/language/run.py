"""A trained language run, loaded from its run directory for generation.

::

    runs/<name>/config.toml         -> the config (task 'language'), the model it builds
    runs/<name>/vocab.json          -> the vocabulary (else rebuilt from the configured corpus)
    runs/<name>/checkpoints/best.pt -> the weights (last.pt when there is no best yet)

:func:`load_run` gives a :class:`LanguageRun` (model in eval mode, vocabulary, config,
checkpoint path); :func:`stream_text` samples from it as pieces of readable text, and
:func:`generate_from_run` does both, the Python form of ``rnnlab generate``.

Example (a trained run in ``runs/ptb-small``)::

    pieces = generate_from_run("runs/ptb-small", "the company said", 20, seed=1)
    print("the company said" + "".join(pieces))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from rnnlab.config import ExperimentConfig
from rnnlab.data.text import Vocabulary
from rnnlab.errors import CheckpointError, DataError, RunDirError, UserError
from rnnlab.language.generation import MAX_TEMPERATURE, generate
from rnnlab.language.model import LanguageModel
from rnnlab.language.task import VOCAB_FILE, LanguageTask, read_vocabulary
from rnnlab.tasks.base import DataSpec
from rnnlab.training.checkpoint import load_model_state
from rnnlab.training.devices import resolve_device
from rnnlab.training.run_dir import RunDir, check_which

MAX_GENERATE_LENGTH = 100_000
"""The most tokens one call may generate."""

__all__ = [
    "MAX_GENERATE_LENGTH",
    "LanguageRun",
    "check_generation_options",
    "generate_from_run",
    "load_run",
    "stream_text",
]


@dataclass
class LanguageRun:
    """A trained language model loaded from a run directory (see :func:`load_run`)."""

    model: LanguageModel
    vocab: Vocabulary
    config: ExperimentConfig
    checkpoint: Path


def load_run(
    run_dir: str | os.PathLike[str],
    checkpoint: str = "best",
    device: str = "cpu",
) -> LanguageRun:
    """Rebuild a language run's model (in eval mode) and vocabulary.

    The vocabulary comes from ``<run>/vocab.json``; a run without one rebuilds it from the
    configured corpus (the same files and settings give the same vocabulary).

    Args:
        run_dir: a run directory of task ``language``.
        checkpoint: ``best`` (falls back to ``last`` when absent) or ``last``.
        device: ``cpu``, ``cuda``, ``mps`` or ``auto``.

    Raises:
        UserError: ``checkpoint`` is neither ``best`` nor ``last``.
        RunDirError: not a run directory, or not a language run.
        CheckpointError: missing or unreadable checkpoint, or weights that do not fit.
        DataError: the vocabulary does not match the checkpoint's model.
    """
    which = check_which(checkpoint)
    run = RunDir(run_dir)
    config = run.config()
    if config.task.name != "language":
        raise RunDirError(f"{run.path} is a {config.task.name!r} run, not a 'language' run")
    path, payload = run.checkpoint(which)
    task = LanguageTask(config)
    vocab_path = run.path / VOCAB_FILE
    if vocab_path.is_file():
        vocab = read_vocabulary(vocab_path)
        where = str(vocab_path)
    else:
        vocab = task.load_corpus().vocab
        where = f"the vocabulary rebuilt from the corpus of {run.config_path}"
    bias = payload["model"].get("decoder.bias")
    if not isinstance(bias, Tensor):
        raise CheckpointError(f"checkpoint {path} holds no language model (no decoder.bias)")
    if bias.shape[0] != len(vocab):
        raise DataError(
            f"vocabulary mismatch: {where} has {len(vocab)} tokens but the model in {path} "
            f"predicts {bias.shape[0]}"
        )
    task.vocab = vocab
    model = task.build_model(DataSpec(vocab_size=len(vocab)))
    load_model_state(model, payload.get("model"), path)
    if not isinstance(model, LanguageModel):  # pragma: no cover - build_model's type
        raise TypeError("build_model did not return a LanguageModel")
    model.to(resolve_device(device)).eval()
    return LanguageRun(model=model, vocab=vocab, config=config, checkpoint=path)


def check_generation_options(length: int, temperature: float, top_k: int | None = None) -> None:
    """Reject a generation length, temperature or top-k out of range (a :class:`UserError`)."""
    if isinstance(length, bool) or not isinstance(length, int):
        raise UserError(f"length must be an integer, got {length!r}")
    if not 1 <= length <= MAX_GENERATE_LENGTH:
        raise UserError(f"length must lie in [1, {MAX_GENERATE_LENGTH}], got {length}")
    if not (isinstance(temperature, (int, float)) and 0.0 < temperature <= MAX_TEMPERATURE):
        raise UserError(f"temperature must lie in (0, {MAX_TEMPERATURE:g}], got {temperature!r}")
    if top_k is not None and top_k < 1:
        raise UserError(f"top_k must be >= 1, got {top_k}")


def stream_text(
    run: LanguageRun,
    prompt: str,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> Iterator[str]:
    """Sample ``length`` tokens after ``prompt`` and give them as pieces of readable text.

    Words are separated by spaces and ``<eos>`` starts a new line; characters are joined
    (``_`` is a space at the ``char-spaced`` level). Prompt tokens outside the vocabulary map
    to ``<unk>`` with a ``UserWarning`` (raised when this is called, before the first piece).

    Raises:
        UserError: length, temperature or top-k out of range.
    """
    check_generation_options(length, temperature, top_k)
    vocab = run.vocab
    if top_k is not None and top_k > len(vocab):
        raise UserError(f"top_k must lie in [1, {len(vocab)}] (the vocabulary size), got {top_k}")
    tokens = generate(
        run.model, vocab, prompt, length, temperature=temperature, top_k=top_k, seed=seed
    )
    return _render(tokens, vocab, fresh_line=not prompt or prompt.endswith(("\n", " ")))


def generate_from_run(
    run_dir: str | os.PathLike[str],
    prompt: str = "",
    length: int = 100,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    checkpoint: str = "best",
    device: str = "cpu",
) -> Iterator[str]:
    """Load a language run and stream the text that continues ``prompt`` (``rnnlab generate``).

    The options are checked before the run is loaded; then :func:`load_run` and
    :func:`stream_text`. The pieces follow the prompt (which is not repeated); a prompt token
    outside the vocabulary gives a ``UserWarning`` when this is called.

    Args:
        run_dir: a run directory of task ``language``.
        prompt: text to continue (may be empty: the text then starts as a new line).
        length: tokens to generate, 1 to :data:`MAX_GENERATE_LENGTH`.
        temperature: softmax temperature in ``(0, 100]``; below 1 is greedier.
        top_k: sample among the ``k`` most likely tokens only.
        seed: sampling seed (the same seed gives the same text); ``None`` draws one.
        checkpoint: ``best`` (else ``last`` when the run has no best) or ``last``.
        device: ``cpu``, ``cuda``, ``mps`` or ``auto``.

    Raises:
        UserError: a bad option, or a run that cannot be loaded (:func:`load_run`).
    """
    which = check_which(checkpoint)
    check_generation_options(length, temperature, top_k)
    run = load_run(run_dir, checkpoint=which, device=device)
    return stream_text(run, prompt, length, temperature=temperature, top_k=top_k, seed=seed)


def _render(tokens: Iterable[str], vocab: Vocabulary, fresh_line: bool) -> Iterator[str]:
    for token in tokens:
        if token == vocab.eos:
            piece = "\n"
        elif vocab.level == "word":
            piece = token if fresh_line else " " + token
        elif vocab.level == "char-spaced" and token == "_":
            piece = " "
        else:
            piece = token
        fresh_line = piece.endswith("\n")
        yield piece
