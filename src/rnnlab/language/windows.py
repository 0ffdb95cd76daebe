"""The language task's loaders: BPTT windows of a split as the trainer and evaluation read them.

A split's token stream is cut into ``B`` contiguous streams by
:class:`rnnlab.data.text.BPTTBatches`; these classes read it in windows of rows::

    streams (N, B):  rows 0..L-1 | rows L..2L-1 | ...   each window: inputs (L, B),
                                                        targets (L, B) one row down

:class:`TrainWindows` is an ``EpochLoader`` (a fixed number of windows per epoch, resumable
from any window, shardable over DDP processes); :class:`EvalWindows` gives every window of
a split in order, so evaluation can carry the state over the whole split.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor

from rnnlab.data.text import BPTTBatches
from rnnlab.errors import DataError

__all__ = ["EvalWindows", "TrainWindows"]


class TrainWindows:
    """Training windows of a :class:`BPTTBatches` as an ``EpochLoader`` (resumable, shardable).

    Batches are ``(inputs, targets)`` tuples of shape ``(L, B)``. The number of windows per
    epoch is fixed (the trainer counts steps per epoch): with varied lengths it is the number
    of windows of epoch 0; an epoch that draws more drops its last windows, one that draws
    fewer splits its longest windows in two until the count matches, so every epoch covers
    (nearly) the whole split. Under DDP each process reads its own ``B / world_size`` streams.

    Example:
        >>> import torch
        >>> windows = TrainWindows(BPTTBatches(torch.arange(26), batch_size=4, bptt=2))
        >>> len(windows), [tuple(x.shape) for x, _ in windows.batches(start=1)]
        (3, [(2, 4), (1, 4)])
    """

    def __init__(self, source: BPTTBatches) -> None:
        self.source = source
        self.count = len(source.schedule(0))
        self.rank = 0
        self.world_size = 1

    def set_epoch(self, epoch: int) -> None:
        self.source.set_epoch(epoch)

    def shard(self, rank: int, world_size: int) -> None:
        if self.source.batch_size % world_size:
            raise DataError(
                f"train.batch_size={self.source.batch_size} must be divisible by the number "
                f"of processes ({world_size}): each process reads an equal share of the streams"
            )
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return self.count

    def plan(self, epoch: int | None = None) -> list[tuple[int, int]]:
        """``(start_row, length)`` of the epoch's windows, exactly ``len(self)`` of them."""
        plan = self.source.schedule(epoch)[: self.count]
        while len(plan) < self.count:
            index = max(range(len(plan)), key=lambda i: plan[i][1])
            start, length = plan[index]
            if length < 2:
                break  # cannot happen for a split with at least count + 1 rows
            half = length // 2
            plan[index : index + 1] = [(start, half), (start + half, length - half)]
        return plan

    def batches(self, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        local = self.source.batch_size // self.world_size
        columns = slice(self.rank * local, (self.rank + 1) * local)
        for row, length in self.plan()[start:]:
            inputs, targets = self.source.window(row, length)  # (L, B), (L, B)
            if self.world_size > 1:
                inputs, targets = inputs[:, columns], targets[:, columns]
            yield inputs, targets

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.batches()


class EvalWindows:
    """All windows of a split in order, as ``(inputs, targets)`` tuples (state carried)."""

    def __init__(self, source: BPTTBatches) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return ((window.inputs, window.targets) for window in self.source.windows(0))
