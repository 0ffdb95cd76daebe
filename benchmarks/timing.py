"""Timing helpers shared by every benchmark that times something.

Scripts in ``benchmarks/`` import it as ``from timing import ...`` (run as
``python benchmarks/<script>.py``, their folder is on ``sys.path``). All host-clock timings
synchronize a CUDA device before reading the clock; :func:`cuda_event_ms` times on the
device itself.

- :func:`seconds`: one call, in seconds; :func:`timed`: a call's result and its seconds;
- :func:`median_seconds` / :func:`best_seconds`: the median / fastest of several calls;
- :func:`median_times`: several implementations, interleaved call by call in a rotating
  order, so load on a shared machine affects them alike;
- :func:`paired_ratio`: the median of per-pair ratios, two implementations back to back;
- :func:`cuda_event_ms`: the median in milliseconds, timed with CUDA events;
- :func:`train_step` / :func:`forced_loop`: the timed unit of the layer benchmarks (forward,
  sum of the outputs, backward), optionally through rnnlab's reference loop.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

from rnnlab.nn import force_loop

Run = Callable[[], None]
T = TypeVar("T")


def synchronize(device: str | torch.device = "cpu") -> None:
    """Wait for a CUDA device's queued work (nothing to wait for on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def seconds(run: Run, device: str | torch.device = "cpu") -> float:
    """Seconds one call of ``run`` takes, the device synchronized before and after."""
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """``work()``'s result and the seconds it took (for runs timed once, end to end)."""
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def median_seconds(
    run: Run, repeats: int, device: str | torch.device = "cpu", warmup: int = 0
) -> float:
    """Median of ``repeats`` timed calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    return statistics.median(seconds(run, device) for _ in range(repeats))


def best_seconds(
    run: Run, repeats: int, device: str | torch.device = "cpu", warmup: int = 1
) -> float:
    """Fastest of ``repeats`` timed calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    return min(seconds(run, device) for _ in range(repeats))


def median_times(runs: dict[str, Run], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each run, the runs interleaved call by call.

    The order rotates from one repetition to the next, so that no implementation always runs
    first; each run is called ``warmup`` times untimed before.
    """
    for run in runs.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(seconds(runs[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


def paired_ratio(ours: Run, theirs: Run, repeats: int, warmup: int = 2) -> float:
    """Median over ``repeats`` of ``time(ours) / time(theirs)``, each pair back to back."""
    for _ in range(warmup):
        theirs()
        ours()
    return statistics.median(seconds(ours) / seconds(theirs) for _ in range(repeats))


def cuda_event_ms(run: Run, repeats: int, warmup: int = 2) -> float:
    """Median milliseconds of ``run`` timed with CUDA events, after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end))
    return statistics.median(samples)


def train_step(module: nn.Module, x: Tensor) -> Run:
    """One training step of a layer: forward, sum of the outputs, backward, grads cleared."""

    def run() -> None:
        out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()
        module.zero_grad(set_to_none=True)
        synchronize(x.device)

    return run


def forced_loop(run: Run) -> Run:
    """``run`` through rnnlab's reference time loop (``rnnlab.nn.force_loop()``)."""

    def forced() -> None:
        with force_loop():
            run()

    return forced
