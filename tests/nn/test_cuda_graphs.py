"""``rnnlab.nn.cuda_graphs`` and the loop interface it relies on, checked on the CPU.

A CUDA-graph replay copies back exactly the buffers ``rnnlab.nn.loops.WRITES`` names, whole.
So each loop must write every element of those buffers and nothing else: checked here by
poisoning the listed buffers with NaN before each call and comparing every other tensor
argument with a snapshot after it, over every family and option. The replay itself needs a
GPU (``benchmarks/gpu_check.py`` compares graphed and eager layers there).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

import rnnlab
from rnnlab.nn import cuda_graphs, loop_backends, loops, native
from rnnlab.nn.cuda_graphs import GraphedLoop, _signature


def _spy(name: str, calls: list[str]) -> Callable[..., Any]:
    loop = getattr(loops, name)
    writes = {list(loop.__code__.co_varnames).index(w) for w in loops.WRITES[name]}

    def spy(*args: Any) -> Any:
        for index in writes:
            if isinstance(args[index], Tensor):  # buffers, never inputs: poisoned, then filled
                assert args[index].is_floating_point(), f"{name}: argument {index} is no buffer"
                args[index].fill_(float("nan"))
        before = {
            i: a.clone() for i, a in enumerate(args) if isinstance(a, Tensor) and i not in writes
        }
        result = loop(*args)
        for index in writes:
            if isinstance(args[index], Tensor):
                assert not args[index].isnan().any(), f"{name} left part of argument {index}"
        for index, snapshot in before.items():
            if any(args[index] is args[w] for w in writes):
                continue  # the same tensor as a written buffer (the RNN's acts is out)
            assert torch.equal(args[index].nan_to_num(), snapshot.nan_to_num()), (
                f"{name} wrote argument {index}, which loops.WRITES does not list"
            )
        calls.append(name)
        return result

    return spy


OPTIONS = [
    {"layer_norm": True},
    {"recurrent_dropout": 0.3, "zoneout": 0.2},
    {"layer_norm": True, "zoneout": 0.2, "recurrent_dropout": 0.3},
]


@pytest.mark.parametrize(
    ("family", "extra", "options", "lengths"),
    [
        (family, extra, options, lengths)
        for (family, extra), options, lengths in itertools.product(
            [
                ("rnn", {}),
                ("rnn", {"nonlinearity": "relu"}),
                ("lstm", {}),
                ("lstm", {"proj_size": 3}),
                ("gru", {}),
            ],
            OPTIONS,
            [False, True],
        )
    ],
)
def test_each_loop_writes_exactly_its_listed_buffers(
    family: str, extra: dict[str, Any], options: dict[str, Any], lengths: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    calls: list[str] = []
    for name in loops.WRITES:
        monkeypatch.setattr(loop_backends.PYTHON_LOOPS, name, _spy(name, calls))
    cls = {"rnn": rnnlab.RNN, "lstm": rnnlab.LSTM, "gru": rnnlab.GRU}[family]
    torch.manual_seed(0)
    layer = cls(4, 5, bidirectional=True, **extra, **options)
    with native.python_loops():
        out, _ = layer(torch.randn(6, 3, 4), lengths=[6, 2, 4] if lengths else None)
        out.sum().backward()
    expected = {f"{family}_backward", f"{family}_forward"}
    if family in ("rnn", "gru") and options.get("layer_norm"):  # normalized_rnn/_gru
        expected.add(f"{family}_rebuild")  # the activations rebuilt in backward
        masked = options.get("zoneout") or options.get("recurrent_dropout")
        if family == "rnn" and masked and not lengths:
            expected.add("recurrent_inputs")  # and W_hh's inputs
    assert set(calls) == expected
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_writes_name_real_arguments() -> None:
    with pytest.raises(ValueError, match="no arguments named"):
        GraphedLoop(loops.rnn_forward, writes=("output",))
    for name, writes in loops.WRITES.items():
        GraphedLoop(getattr(loops, name), writes)  # raises on a misspelt name


def test_signature_tells_shapes_flags_and_aliasing_apart() -> None:
    a, b = torch.zeros(2, 3), torch.zeros(2, 3)
    assert _signature("f", (a, b, True)) == _signature("f", (torch.ones(2, 3), b, True))
    assert _signature("f", (a, b, True)) != _signature("f", (a, b, False))
    assert _signature("f", (a, b, True)) != _signature("f", (a, a, True))  # aliasing
    assert _signature("f", (a, b, True)) != _signature("f", (a.t(), b, True))  # strides
    assert _signature("f", (a, None)) != _signature("f", (a, b))
    assert _signature("f", (a,)) != _signature("g", (a,))


def test_on_the_cpu_the_function_runs_as_it_is() -> None:
    cuda_graphs.clear()
    seen: list[int] = []

    def double(x: Tensor, out: Tensor) -> Tensor:
        seen.append(1)
        return torch.mul(x, 2, out=out)

    graphed = GraphedLoop(double, writes=("out",))
    out = torch.empty(3)
    for _ in range(3):
        graphed(torch.ones(3), out)
    assert len(seen) == 3 and out.tolist() == [2.0, 2.0, 2.0]
    assert cuda_graphs.captured() == 0 and not cuda_graphs._cache


def _held(nbytes: int, last_use: int) -> cuda_graphs._Entry:
    return cuda_graphs._Entry(calls=2, last_use=last_use, graph=object(), nbytes=nbytes)


def test_room_is_made_from_stale_graphs_only_oldest_first() -> None:
    cuda_graphs.clear()
    stale = cuda_graphs.STALE_CALLS
    cuda_graphs._cache["old"] = _held(400, last_use=0)
    cuda_graphs._cache["older-but-busy"] = _held(400, last_use=1000)
    cuda_graphs._cache["also-old"] = _held(400, last_use=10)
    now = 1000 + stale // 2
    assert cuda_graphs.make_room(300, budget=1500, now=now)  # fits already: nothing dropped
    assert cuda_graphs.captured() == 3
    assert cuda_graphs.make_room(500, budget=1500, now=now)  # drops "old" only
    assert cuda_graphs._cache["old"].graph is None
    assert cuda_graphs._cache["also-old"].graph is not None
    assert not cuda_graphs.make_room(1200, budget=1500, now=now)  # a busy graph never goes
    assert cuda_graphs._cache["older-but-busy"].graph is not None
    assert cuda_graphs._cache["also-old"].graph is None
    cuda_graphs.clear()


def test_graph_count_is_bounded_and_signatures_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda_graphs.clear()
    monkeypatch.setattr(cuda_graphs, "MAX_GRAPHS", 2)
    monkeypatch.setattr(cuda_graphs, "MAX_SIGNATURES", 3)
    cuda_graphs._cache["a"] = _held(1, last_use=0)
    cuda_graphs._cache["b"] = _held(1, last_use=10_000)
    assert cuda_graphs.make_room(1, budget=100, now=10_001)  # "a" is stale: dropped for room
    assert [k for k, e in cuda_graphs._cache.items() if e.graph is not None] == ["b"]
    for key in ("c", "d", "e"):
        cuda_graphs._cache[key] = cuda_graphs._Entry(calls=1)
    cuda_graphs._forget_old_signatures()  # 5 remembered, 3 allowed: the oldest graphless go
    assert list(cuda_graphs._cache) == ["b", "d", "e"]
    cuda_graphs.clear()
