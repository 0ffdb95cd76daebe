"""The fused BPTT's time loops: native C++ ops, or the Python ones, with one interface.

``rnnlab.nn.native`` compiles them for CPU tensors of float32/float64; ``rnnlab.nn.loops``
runs them in Python on any device, replayed as CUDA graphs on a GPU once a shape repeats
(``rnnlab.nn.cuda_graphs``). Both take the same inputs and preallocated buffers.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from rnnlab.nn import loops, native
from rnnlab.nn.cuda_graphs import GraphedLoop

PYTHON_LOOPS = SimpleNamespace(
    **{name: GraphedLoop(getattr(loops, name), writes) for name, writes in loops.WRITES.items()}
)


def time_loops(use_native: bool) -> Any:
    """The time loops: native C++ ops, or the Python ones (graphed on CUDA): one interface."""
    return native.ops() if use_native else PYTHON_LOOPS
