"""Resumable batch loaders: the order of an epoch is a function of (seed, epoch) only.

The trainer needs three things from a training loader, beyond iterating batches:

- ``set_epoch(epoch)``: the order of epoch ``epoch`` is fixed by ``(seed, epoch)`` and by
  nothing else (no global RNG is consumed), so a resumed run sees the same batches;
- ``batches(start)``: iterate from batch index ``start`` on, *without* producing the
  batches before it, so a run resumed mid-epoch continues exactly where it stopped;
- ``shard(rank, world_size)``: under DDP each process takes its slice of every global
  batch (``batch_size / world_size`` rows), so the global batch equals a one-process run's.

Layout of one shuffled epoch (``N`` samples, global batch ``B``, two processes)::

    perm = randperm(N, generator=seed*1000003+epoch)   [p0 p1 ... p(N-1)]
    global batch b = perm[b*B : (b+1)*B]               rank 0: first B/2, rank 1: last B/2

:class:`EpochLoader` is the protocol; :class:`ShuffledBatches` implements it for tensors held
in memory and for any map-style dataset with a collate function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from rnnlab.errors import DataError


@runtime_checkable
class EpochLoader(Protocol):
    """What the trainer asks of a training loader (evaluation loaders only need iteration)."""

    def set_epoch(self, epoch: int) -> None:
        """Fix the order of the coming epoch as a function of ``(seed, epoch)``."""

    def shard(self, rank: int, world_size: int) -> None:
        """Yield only this process's part of each global batch from now on."""

    def batches(self, start: int = 0) -> Iterator[Any]:
        """The batches of the current epoch from index ``start`` (skipped ones not built)."""

    def __len__(self) -> int:
        """Number of batches per epoch (the same on every process)."""


class ShuffledBatches:
    """Batches of a dataset in an order fixed by ``(seed, epoch)``; implements EpochLoader.

    Args:
        data: a tuple of tensors sharing their first dimension (indexed directly), or a
            map-style dataset (``len`` and ``[i]``) whose items ``collate`` stacks.
        batch_size: the global batch size.
        shuffle: a new permutation every epoch; otherwise the natural order.
        seed: seed of the permutations (independent of every global RNG).
        drop_last: drop the last incomplete batch (always true for training under DDP).
        collate: for datasets, turns a list of items into a batch.

    Example:
        >>> x = torch.arange(10.0).unsqueeze(1)
        >>> loader = ShuffledBatches((x,), batch_size=4, seed=0)
        >>> loader.set_epoch(3)
        >>> first, second = list(loader.batches())
        >>> list(loader.batches(start=1))[0][0].equal(second[0])
        True
    """

    def __init__(
        self,
        data: tuple[Tensor, ...] | Sequence[Any],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        collate: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        self.tensors = isinstance(data, tuple) and all(isinstance(t, Tensor) for t in data)
        if not self.tensors and collate is None:
            raise ValueError(
                "ShuffledBatches needs collate= for a dataset that is not a tuple of tensors"
            )
        self.data = data
        self.size = len(data[0]) if self.tensors else len(data)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.collate = collate
        self.epoch = 0
        self.rank = 0
        self.world_size = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self, rank: int, world_size: int) -> None:
        if self.batch_size % world_size:
            raise DataError(
                f"train.batch_size={self.batch_size} must be divisible by the number of "
                f"processes ({world_size}) so that every process gets an equal share"
            )
        self.rank, self.world_size = rank, world_size
        self.drop_last = self.drop_last or world_size > 1

    def __len__(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def order(self) -> Tensor:
        """The permutation of the current epoch (natural order without shuffling)."""
        if not self.shuffle:
            return torch.arange(self.size)
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**62)
        return torch.randperm(self.size, generator=generator)

    def batches(self, start: int = 0) -> Iterator[Any]:
        order = self.order()
        local = self.batch_size // self.world_size
        for index in range(start, len(self)):
            rows = order[index * self.batch_size : (index + 1) * self.batch_size]
            if self.world_size > 1:
                rows = rows[self.rank * local : (self.rank + 1) * local]
            yield self._take(rows)

    def __iter__(self) -> Iterator[Any]:
        return self.batches()

    def _take(self, rows: Tensor) -> Any:
        if self.tensors:
            return tuple(t[rows] for t in self.data)
        assert self.collate is not None  # checked in __init__
        data = self.data
        return self.collate([data[int(i)] for i in rows])
