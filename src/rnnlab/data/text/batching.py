"""Token streams in batches for truncated BPTT: :func:`batchify` and :class:`BPTTBatches`.

Batching, as in pytorch/examples ``word_language_model``: the token stream of a split is cut
into ``B`` equal contiguous streams, one per column (the tail that does not fill a row is
dropped), and a stream's hidden state carries over from one window to the next::

    tokens: a b c d e f g h i j k l m n o p q r s t u v w x y z     (N = 26)

    batchify(tokens, 4) -> (T = 6, B = 4); "y z" dropped
        +-         -+
        | a g m s |
        | b h n t |
        | c i o u |
        | d j p v |
        | e k q w |
        | f l r x |
        +-         -+

BPTT windows of length ``L = 2`` on that matrix: the targets are the inputs one row down, so
the last row is only ever a target, and the last window may be shorter::

    window 0: inputs rows 0-1  | a g m s |   targets rows 1-2  | b h n t |
                               | b h n t |                     | c i o u |
    window 1: inputs rows 2-3  (c i o u / d j p v), targets rows 3-4
    window 2: inputs row  4    (e k q w),           targets row  5       (L = 1)

Varied lengths (AWD-LSTM, Merity et al. 2018): for each window, ``base = bptt`` with
probability ``p_full = 0.95``, else ``bptt / 2``; ``L = round(N(base, sigma = 5))``, clamped
to ``[min(5, bptt), bptt + 4 * sigma]`` and to the tokens left. AWD-LSTM also scales the
learning rate of that step by ``L / bptt``; that is the trainer's business
(``inputs.shape[0] / bptt``). The lengths of epoch ``e`` come from a generator seeded with
``(seed, e)`` alone, so :meth:`BPTTBatches.windows` can restart an epoch at any window index
and reproduce the rest exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


def batchify(data: Tensor, batch_size: int) -> Tensor:
    """Cut a 1-D token stream into ``batch_size`` contiguous columns (see the module docstring).

    Args:
        data: ``(N,)`` token ids.
        batch_size: the number of streams ``B``.

    Returns:
        ``(N // B, B)``: column ``b`` is ``data[b * T : (b + 1) * T]``; the tail is dropped.
    """
    if data.dim() != 1:
        raise ValueError(f"data must be 1-D token ids, got shape {tuple(data.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    steps = data.numel() // batch_size
    if steps < 2:
        raise ValueError(
            f"{data.numel()} tokens are too few for batch_size {batch_size}: "
            f"each stream needs at least 2 tokens (an input and its target)"
        )
    return data[: steps * batch_size].view(batch_size, steps).t().contiguous()  # (T, B)


class Window(NamedTuple):
    """One BPTT window: ``inputs`` and ``targets`` of shape ``(L, B)`` (``(B, L)`` batch-first)."""

    inputs: Tensor
    targets: Tensor


class BPTTBatches:
    """BPTT windows over ``B`` contiguous streams, fixed or AWD-LSTM-varied in length.

    Iterating gives the windows of the current epoch (:meth:`set_epoch`) in order; the hidden
    state should be carried from one window to the next and detached (truncated BPTT).

    Args:
        data: ``(N,)`` token ids of one split.
        batch_size: number of streams ``B``.
        bptt: window length (the mean length when ``vary``).
        vary: draw window lengths as AWD-LSTM does (see the module docstring).
        seed: with the epoch, fixes the varied lengths.
        p_full: probability of base length ``bptt`` rather than ``bptt / 2``.
        sigma: standard deviation of the varied length.
        min_len: shortest varied window (capped at ``bptt``).
        batch_first: give windows as ``(B, L)`` instead of ``(L, B)``.
        device: where to keep the streams.

    Example:
        >>> batches = BPTTBatches(torch.arange(26), batch_size=4, bptt=2)
        >>> [tuple(w.inputs.shape) for w in batches]
        [(2, 4), (2, 4), (1, 4)]
        >>> batches.streams[:, 0].tolist()
        [0, 1, 2, 3, 4, 5]
    """

    def __init__(
        self,
        data: Tensor,
        batch_size: int,
        bptt: int,
        *,
        vary: bool = False,
        seed: int = 0,
        p_full: float = 0.95,
        sigma: float = 5.0,
        min_len: int = 5,
        batch_first: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(bptt, bool) or not isinstance(bptt, int) or bptt < 1:
            raise ValueError(f"bptt must be an integer >= 1, got {bptt!r}")
        if not 0.0 <= p_full <= 1.0:
            raise ValueError(f"p_full must lie in [0, 1], got {p_full!r}")
        if not sigma >= 0.0:
            raise ValueError(f"sigma must be >= 0, got {sigma!r}")
        if isinstance(min_len, bool) or not isinstance(min_len, int) or min_len < 1:
            raise ValueError(f"min_len must be an integer >= 1, got {min_len!r}")
        self.streams = batchify(data, batch_size)  # (T, B)
        if device is not None:
            self.streams = self.streams.to(device)
        self.batch_size = batch_size
        self.bptt = bptt
        self.vary = bool(vary)
        self.seed = int(seed)
        self.p_full = float(p_full)
        self.sigma = float(sigma)
        self.min_len = min(min_len, bptt)
        self.max_len = bptt + math.ceil(4 * sigma)
        self.batch_first = bool(batch_first)
        self.epoch = 0

    @property
    def num_tokens(self) -> int:
        """Target tokens per epoch: ``(T - 1) * B``."""
        return (self.streams.shape[0] - 1) * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose windows iteration gives (matters only when ``vary``)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = epoch

    def schedule(self, epoch: int | None = None) -> list[tuple[int, int]]:
        """``(start_row, length)`` of every window of an epoch; the lengths sum to ``T - 1``."""
        epoch = self.epoch if epoch is None else epoch
        last = self.streams.shape[0] - 1  # rows that can be inputs
        windows = []
        start = 0
        rng = np.random.default_rng([self.seed, epoch]) if self.vary else None
        while start < last:
            length = self.bptt
            if rng is not None:
                base = self.bptt if rng.random() < self.p_full else self.bptt / 2
                drawn = round(float(rng.normal(base, self.sigma)))
                length = min(max(drawn, self.min_len), self.max_len)
            length = min(length, last - start)
            windows.append((start, length))
            start += length
        return windows

    def __len__(self) -> int:
        return len(self.schedule())

    def window(self, start: int, length: int) -> Window:
        """The window whose inputs are rows ``start .. start + length - 1``."""
        inputs = self.streams[start : start + length]  # (L, B)
        targets = self.streams[start + 1 : start + 1 + length]  # (L, B)
        if self.batch_first:
            return Window(inputs.t(), targets.t())  # (B, L)
        return Window(inputs, targets)

    def windows(self, epoch: int | None = None, start_index: int = 0) -> Iterator[Window]:
        """The windows of ``epoch`` (default: the current one) from window ``start_index`` on."""
        plan = self.schedule(epoch)
        if not 0 <= start_index <= len(plan):
            raise ValueError(f"start_index must lie in [0, {len(plan)}], got {start_index}")
        for start, length in plan[start_index:]:
            yield self.window(start, length)

    def __iter__(self) -> Iterator[Window]:
        return self.windows()
