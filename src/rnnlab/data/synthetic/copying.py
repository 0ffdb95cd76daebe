"""The copy-memory task (Arjovsky, Shah and Bengio 2016): recall 10 symbols after ``T`` steps.

:func:`copy_memory` generates it; the token helpers give the delimiter and vocabulary size, and
the baseline functions the scores of a model without memory (cross-entropy
``10 log(8) / (T + 20)`` per step with the defaults).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

COPY_MEMORY_LENGTH = 10
COPY_ALPHABET_SIZE = 8
COPY_BLANK = 0


def copy_memory_delimiter(alphabet_size: int = COPY_ALPHABET_SIZE) -> int:
    """The delimiter token of :func:`copy_memory`: ``alphabet_size + 1`` (9 by default)."""
    return alphabet_size + 1


def copy_memory_vocabulary_size(alphabet_size: int = COPY_ALPHABET_SIZE) -> int:
    """Number of token kinds in :func:`copy_memory`: blank, the symbols, the delimiter."""
    return alphabet_size + 2


def copy_memory(
    num_samples: int,
    length: int,
    seed: int,
    *,
    memory_length: int = COPY_MEMORY_LENGTH,
    alphabet_size: int = COPY_ALPHABET_SIZE,
) -> tuple[Tensor, Tensor]:
    """Generate the copy-memory task (Arjovsky, Shah and Bengio 2016).

    Tokens: ``0`` is the blank, ``1..alphabet_size`` are the symbols, ``alphabet_size + 1``
    is the delimiter. With ``M = memory_length`` (10) and ``K = alphabet_size`` (8), each
    sequence has ``T + 2M`` steps::

        input:   s_1 .. s_M   0 .. 0 (T - 1 blanks)   :   0 .. 0 (M blanks)
        target:  0 ..................... 0 (T + M blanks)   s_1 .. s_M

    with ``s_i`` uniform on the ``K`` symbols, independently. The delimiter ``:`` sits at
    step ``M + T - 1``, so ``T`` steps separate each symbol from the step it must be recalled
    at. The memoryless baseline predicts a blank for the first ``T + M`` steps and the uniform
    distribution over the symbols for the last ``M``: its cross-entropy per step is
    ``M log(K) / (T + 2M)`` (:func:`copy_memory_baseline_cross_entropy`), its accuracy per step
    ``(T + M + M / K) / (T + 2M)`` and its accuracy on the ``M`` recalled steps ``1 / K``
    (:func:`copy_memory_baseline_accuracy`).

    Args:
        num_samples: number of sequences ``N``.
        length: the delay ``T`` (at least 1).
        seed: the generator seed; the same seed gives the same data.
        memory_length: number of symbols to remember ``M``.
        alphabet_size: number of distinct symbols ``K`` (at least 2).

    Returns:
        ``inputs`` and ``targets``, both integer tokens of shape ``(N, T + 2M)``.

    Example:
        >>> x, y = copy_memory(2, 5, seed=0)
        >>> x.shape, y.shape
        (torch.Size([2, 25]), torch.Size([2, 25]))
        >>> bool((y[:, -10:] == x[:, :10]).all())
        True
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if length < 1:
        raise ValueError(f"length (the delay T) must be >= 1, got {length}")
    if memory_length < 1:
        raise ValueError(f"memory_length must be >= 1, got {memory_length}")
    if alphabet_size < 2:
        raise ValueError(f"alphabet_size must be >= 2, got {alphabet_size}")
    gen = torch.Generator().manual_seed(seed)
    steps = length + 2 * memory_length
    symbols = torch.randint(1, alphabet_size + 1, (num_samples, memory_length), generator=gen)
    inputs = torch.full((num_samples, steps), COPY_BLANK, dtype=torch.long)  # (N, T + 2M)
    inputs[:, :memory_length] = symbols
    inputs[:, memory_length + length - 1] = copy_memory_delimiter(alphabet_size)
    targets = torch.full((num_samples, steps), COPY_BLANK, dtype=torch.long)  # (N, T + 2M)
    targets[:, -memory_length:] = symbols
    return inputs, targets


def copy_memory_baseline_cross_entropy(
    length: int,
    *,
    memory_length: int = COPY_MEMORY_LENGTH,
    alphabet_size: int = COPY_ALPHABET_SIZE,
) -> float:
    """Cross-entropy per step (nats) of the memoryless baseline: ``M log(K) / (T + 2M)``.

    Example:
        >>> round(copy_memory_baseline_cross_entropy(100), 4)
        0.1733
    """
    if length < 1:
        raise ValueError(f"length (the delay T) must be >= 1, got {length}")
    return memory_length * math.log(alphabet_size) / (length + 2 * memory_length)


def copy_memory_baseline_accuracy(
    length: int,
    *,
    memory_length: int = COPY_MEMORY_LENGTH,
    alphabet_size: int = COPY_ALPHABET_SIZE,
    recall_only: bool = False,
) -> float:
    """Expected accuracy of the memoryless baseline (blanks, then a guessed symbol).

    Args:
        length: the delay ``T``.
        memory_length: ``M``.
        alphabet_size: ``K``.
        recall_only: score only the ``M`` recall steps (``1 / K``) instead of all
            ``T + 2M`` steps (``(T + M + M / K) / (T + 2M)``).
    """
    if length < 1:
        raise ValueError(f"length (the delay T) must be >= 1, got {length}")
    if recall_only:
        return 1.0 / alphabet_size
    steps = length + 2 * memory_length
    return (length + memory_length + memory_length / alphabet_size) / steps
