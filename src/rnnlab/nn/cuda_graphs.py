"""Replay the fused BPTT's Python time loops as CUDA graphs.

On a GPU the time loops of ``rnnlab.nn.loops`` launch a few small kernels per step, and
Python's launch overhead, not the GPU, sets their speed: measured on an H200 (T=100, B=32,
H=256, ``benchmarks/cuda_graphs.py``), a layer-norm LSTM's training step took 40 ms eagerly
and 6.9 ms captured whole in a CUDA graph (cuDNN's plain LSTM: 3.9 ms). :class:`GraphedLoop`
captures one loop function per distinct call signature (shapes, dtypes, flags, which
arguments alias) and replays it:

- the first call with a new signature runs eagerly (a shape seen once, such as an epoch's
  last short batch, is never captured); the second captures (after one warm-up run on a
  side stream, as CUDA graphs require) and every later one replays;
- a replay copies the tensor arguments into the graph's static copies, replays, copies the
  buffers the loop writes back into the caller's, and returns clones of its results: nothing
  the caller keeps points into the graph's memory, so layers that share a signature share a
  graph, and any number of forwards may run before their backwards;
- the loops draw no random numbers (the masks are inputs), so a replay computes exactly what
  the eager call computes;
- the static copies cost memory (about one more copy of a layer's saved activations per
  signature), bounded in total by ``RNNLAB_CUDA_GRAPHS_MB`` (default: an eighth of the
  device's memory) and in count by :data:`MAX_GRAPHS`. To make room, graphs unused for
  :data:`STALE_CALLS` loop calls are dropped, oldest first; graphs still in use never are:
  a signature that does not fit runs eagerly until room frees (no capture-evict cycles).
  Not counted: each graph's private memory pool, which keeps the loop's temporaries (about
  one more ``(T, B, G*H)`` buffer per graph);
- inside another capture (a user's own ``torch.cuda.graph`` or
  ``make_graphed_callables``), on the CPU, or with ``RNNLAB_CUDA_GRAPHS=0``, the function
  runs as it is. A capture that fails is reported once and that signature runs eagerly.

Example:
    >>> import torch
    >>> def scale(x, out, factor):
    ...     torch.mul(x, factor, out=out)
    ...     return out.sum()
    >>> graphed = GraphedLoop(scale, writes=("out",))
    >>> x, out = torch.ones(3), torch.empty(3)
    >>> float(graphed(x, out, 2.0)), out.tolist()  # on the CPU: the function itself
    (6.0, [2.0, 2.0, 2.0])
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

MAX_GRAPHS = 32  # graphs held at once
STALE_CALLS = 256  # loop calls without use after which a graph may be dropped for room
MAX_SIGNATURES = 1024  # signatures remembered (call counts), graphs or not


def enabled() -> bool:
    """Whether CUDA tensors' loops are replayed as graphs (``RNNLAB_CUDA_GRAPHS=0``: not)."""
    return os.environ.get("RNNLAB_CUDA_GRAPHS", "1") != "0"


def budget_bytes(device: torch.device) -> int:
    """Bytes the static copies may take: ``RNNLAB_CUDA_GRAPHS_MB``, or 1/8 of the device."""
    setting = os.environ.get("RNNLAB_CUDA_GRAPHS_MB")
    if setting is not None:
        return int(float(setting) * 2**20)
    return int(torch.cuda.get_device_properties(device).total_memory // 8)


@dataclass
class _Entry:
    """One signature: how often seen, and once captured its graph and static arguments."""

    calls: int = 0
    last_use: int = 0  # the loop-call tick of the latest call
    graph: Any = None  # torch.cuda.CUDAGraph
    static: list[Any] = field(default_factory=list)
    result: Any = None
    nbytes: int = 0
    failed: bool = False


_cache: OrderedDict[Hashable, _Entry] = OrderedDict()  # least recently used first
_tick = 0


def clear() -> None:
    """Drop every captured graph (and the memory its static copies hold)."""
    _cache.clear()


def captured() -> int:
    """How many graphs are held now."""
    return sum(entry.graph is not None for entry in _cache.values())


def _aliases(args: tuple[Any, ...]) -> list[int | None]:
    """For each tensor argument, the index of the first argument that is the same tensor."""
    first: dict[int, int] = {}
    out: list[int | None] = []
    for index, arg in enumerate(args):
        if isinstance(arg, Tensor):
            out.append(first.setdefault(id(arg), index))
        else:
            out.append(None)
    return out


def _signature(name: str, args: tuple[Any, ...]) -> Hashable:
    parts: list[Hashable] = [name]
    for arg, alias in zip(args, _aliases(args), strict=True):
        if isinstance(arg, Tensor):
            parts.append((tuple(arg.shape), tuple(arg.stride()), arg.dtype, arg.device, alias))
        else:
            parts.append(arg)
    return tuple(parts)


def _clone(result: Any) -> Any:
    if isinstance(result, Tensor):
        return result.clone()
    if isinstance(result, tuple):
        return tuple(_clone(item) for item in result)
    return result


def make_room(needed: int, budget: int, now: int) -> bool:
    """Drop stale graphs, oldest first, until ``needed`` more bytes and one more graph fit.

    Returns whether they fit. Graphs used within the last :data:`STALE_CALLS` loop calls stay.
    """

    def fits() -> bool:
        held = [entry for entry in _cache.values() if entry.graph is not None]
        total = sum(entry.nbytes for entry in held)
        return total + needed <= budget and len(held) < MAX_GRAPHS

    for entry in list(_cache.values()):  # oldest first
        if fits():
            return True
        if entry.graph is not None and now - entry.last_use > STALE_CALLS:
            entry.graph, entry.static, entry.result, entry.nbytes = None, [], None, 0
    return fits()


def _forget_old_signatures() -> None:
    """Bound the remembered signatures: drop the oldest that hold no graph."""
    excess = len(_cache) - MAX_SIGNATURES
    for key in [key for key, entry in _cache.items() if entry.graph is None][: max(excess, 0)]:
        del _cache[key]


class GraphedLoop:
    """A loop function replayed as a CUDA graph per call signature (see the module doc).

    Args:
        fn: the function; its tensor arguments are inputs or buffers it writes in place, its
            result a tensor or a tuple of tensors.
        writes: the names of the arguments ``fn`` writes (copied back after a replay).
    """

    def __init__(self, fn: Callable[..., Any], writes: tuple[str, ...]):
        names = list(inspect.signature(fn).parameters)
        unknown = [name for name in writes if name not in names]
        if unknown:
            raise ValueError(f"GraphedLoop({fn.__name__}): no arguments named {unknown}")
        self.fn = fn
        self.writes = tuple(names.index(name) for name in writes)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any) -> Any:
        device = next((a.device for a in args if isinstance(a, Tensor)), None)
        if (
            device is None
            or device.type != "cuda"
            or not enabled()
            or torch.cuda.is_current_stream_capturing()
        ):
            return self.fn(*args)
        global _tick
        _tick += 1
        key = _signature(self.fn.__name__, args)
        entry = _cache.setdefault(key, _Entry())
        _cache.move_to_end(key)
        entry.calls += 1
        entry.last_use = _tick
        if entry.calls == 1:
            _forget_old_signatures()
        if entry.failed or entry.calls == 1:
            return self.fn(*args)
        with torch.cuda.device(device):
            if entry.graph is None:
                needed = sum({id(a): a.nbytes for a in args if isinstance(a, Tensor)}.values())
                if not make_room(needed, budget_bytes(device), _tick):
                    return self.fn(*args)  # no room now: eagerly, until stale graphs go
                try:
                    self._capture(entry, args)
                except Exception as error:  # run eagerly from now on, and say so once
                    entry.failed, entry.graph, entry.static = True, None, []
                    warnings.warn(
                        f"rnnlab: could not capture {self.fn.__name__} as a CUDA graph "
                        f"({type(error).__name__}: {error}); it runs eagerly",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    return self.fn(*args)
            return self._replay(entry, args)

    def _capture(self, entry: _Entry, args: tuple[Any, ...]) -> None:
        static: list[Any] = []
        for arg, alias in zip(args, _aliases(args), strict=True):
            if alias is not None and alias < len(static):
                static.append(static[alias])  # the same tensor twice: one static copy
            elif isinstance(arg, Tensor):
                static.append(arg.detach().clone())
            else:
                static.append(arg)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: lazy initialisation stays out of the graph
            self.fn(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            result = self.fn(*static)
        distinct = {id(s): s for s in static if isinstance(s, Tensor)}
        entry.graph, entry.static, entry.result = graph, static, result
        entry.nbytes = sum(s.untyped_storage().nbytes() for s in distinct.values())

    def _replay(self, entry: _Entry, args: tuple[Any, ...]) -> Any:
        copied: set[int] = set()
        for index, (arg, static) in enumerate(zip(args, entry.static, strict=True)):
            if isinstance(arg, Tensor) and index not in self.writes and id(static) not in copied:
                static.copy_(arg)
                copied.add(id(static))
        entry.graph.replay()
        done: set[int] = set()
        for index in self.writes:
            arg = args[index]
            if isinstance(arg, Tensor) and id(arg) not in done:
                arg.copy_(entry.static[index])
                done.add(id(arg))
        return _clone(entry.result)
