"""Which kernel a recurrent layer runs, and why.

Three kernels, by name:

- ``torch-fused``: torch's own kernel (oneDNN on CPU, cuDNN on GPU), for layers without a
  step-changing extra (DropConnect allowed: the masked ``W_hh`` replaces the parameter in
  torch's weight list for one call);
- ``rnnlab-fused-bptt``: rnnlab's fused BPTT (``rnnlab.nn.fused_bptt``) for layer norm,
  recurrent dropout and zoneout, and for plain layers where a measured row of
  ``rnnlab.nn.routes`` says it trains faster on CPU;
- ``rnnlab-loop``: the reference loop (``rnnlab.nn.directions.reference_direction``), only
  when forced by :func:`force_loop`.

:func:`select_kernel` decides; ``KernelChoice.reason`` says why in words (``explain()`` on a
layer). How the kernels work is in ``docs/kernels.md``; what they measure, in
``benchmarks/RESULTS.md``.

Regularizers are inactive in ``eval()`` mode, so an evaluating layer with only dropout-type
extras runs fused. Zoneout is the exception: at evaluation it mixes the previous and the
new state with weights ``p`` and ``1 - p`` (its expectation, as Krueger et al. prescribe),
which the fused kernel cannot do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from rnnlab.nn import cuda_graphs, huge_pages, native
from rnnlab.nn.routes import Route, native_route

_forced: ContextVar[str | None] = ContextVar("rnnlab_forced_kernel", default=None)


@contextmanager
def _force(kernel: str) -> Iterator[None]:
    token = _forced.set(kernel)
    try:
        yield
    finally:
        _forced.reset(token)


@contextmanager
def force_loop() -> Iterator[None]:
    """Run every rnnlab layer through rnnlab's reference time loop inside this block.

    For comparing the implementations (tests, benchmarks, debugging): the reference loop
    computes the same function as torch's fused kernel when no extra is active, and as
    rnnlab's fused BPTT when one is.

    Example:
        >>> import torch, rnnlab
        >>> lstm = rnnlab.LSTM(3, 4)
        >>> with force_loop():
        ...     print(lstm.kernel().name)
        rnnlab-loop
    """
    with _force("loop"):
        yield


@contextmanager
def force_fused_bptt() -> Iterator[None]:
    """Run every rnnlab layer through rnnlab's fused BPTT inside this block, plain ones too.

    For tests and benchmarks: without extras it must compute what torch's fused kernel does.

    Example:
        >>> import torch, rnnlab
        >>> gru = rnnlab.GRU(3, 4)
        >>> with force_fused_bptt():
        ...     print(gru.kernel().name)
        rnnlab-fused-bptt
    """
    with _force("fused_bptt"):
        yield


class HasExtras(Protocol):
    """What kernel selection reads from a layer."""

    training: bool
    layer_norm: bool
    recurrent_dropout: float
    zoneout: float
    weight_drop: float
    family: ClassVar[str]
    hidden_size: int
    weight_hh_l0: Any  # a Tensor (nn.Module's __getattr__ types it loosely)


@dataclass(frozen=True)
class KernelChoice:
    """The kernel a forward call will use.

    Attributes:
        fused: ``True`` for torch's fused kernel, ``False`` for one of rnnlab's own.
        drop_connect: whether ``W_hh`` is replaced by a DropConnect-masked copy.
        reason: the choice in words.
        fused_bptt: with ``fused=False``: ``True`` for rnnlab's fused BPTT, ``False`` for
            the reference time loop.
    """

    fused: bool
    drop_connect: bool
    reason: str
    fused_bptt: bool = False

    @property
    def name(self) -> str:
        """A short name: ``"torch-fused"``, ``"rnnlab-fused-bptt"`` or ``"rnnlab-loop"``."""
        if self.fused:
            return "torch-fused"
        return "rnnlab-fused-bptt" if self.fused_bptt else "rnnlab-loop"


def _loops_in_words(layer: HasExtras) -> str:
    """Where the fused BPTT's time loops run for this layer's weights."""
    weight = layer.weight_hh_l0
    if native.usable(weight):
        pages = (
            "; its large buffers ask for transparent huge pages (RNNLAB_HUGE_PAGES=0 turns "
            "that off)"
            if huge_pages.active()
            else ""
        )
        threads = native.ops().parallel_threads()
        split = (
            f"batch rows split between {threads} threads from 16 rows on"
            if threads > 1
            else "one thread"
        )
        return f"its time loops run as compiled C++ (rnnlab.nn.native, {split}){pages}"
    if native.python_forced():
        return "its time loops run in Python (forced by rnnlab.nn.native.python_loops())"
    if weight.device.type == "cuda":
        if cuda_graphs.enabled():
            return (
                "its time loops run in Python, replayed as CUDA graphs once a shape repeats "
                "(rnnlab.nn.cuda_graphs; RNNLAB_CUDA_GRAPHS=0 turns that off)"
            )
        return "its time loops run in Python, launch by launch (RNNLAB_CUDA_GRAPHS=0)"
    if weight.device.type != "cpu" or weight.dtype not in (torch.float32, torch.float64):
        return f"its time loops run in Python ({weight.device.type}, {weight.dtype})"
    return f"its time loops run in Python (native kernel {native.status()})"


def _normalized_in_words(layer: HasExtras) -> str:
    """For a layer-normalized layer: how its input projection runs under autograd."""
    if not layer.layer_norm:
        return ""
    if layer.family == "lstm":
        if not native.usable(layer.weight_hh_l0):
            return ""
        return (
            "under autograd its input projection and layer norm are one node keeping "
            "x W_ih^T, its layer norm the native kernel's (rnnlab.nn.input_norm); "
        )
    if layer.family == "rnn" and layer.zoneout > 0 and not layer.training:
        return ""  # eval-mode zoneout: the outputs cannot be rebuilt elementwise
    return (
        "under autograd the input projection and its layer norm join that node, which keeps "
        "both layer norms' inputs instead of the activations and rebuilds those in backward "
        "(rnnlab.nn.normalized_" + layer.family + "); "
    )


def _native_plain(layer: HasExtras, batch: int | None) -> Route | None:
    """The measured row by which a layer without step-changing extras runs rnnlab's fused
    BPTT (faster there, or as fast with less memory); ``None`` where it runs torch's kernel."""
    if not (layer.training and torch.is_grad_enabled()):
        return None
    extras = frozenset({"weight_drop"} if layer.weight_drop > 0 else ())
    route = native_route(layer.family, layer.hidden_size, batch, extras)
    # CPU, float32/float64, built, not turned off
    return route if route is not None and native.usable(layer.weight_hh_l0) else None


def select_kernel(layer: HasExtras, batch: int | None = None) -> KernelChoice:
    """Choose the kernel for ``layer`` in its current train/eval mode, for a batch size."""
    mode = "training" if layer.training else "eval"
    step_changes = []
    if layer.layer_norm:
        step_changes.append("layer_norm normalizes the gates inside every step")
    if layer.training and layer.recurrent_dropout > 0:
        step_changes.append(
            f"recurrent_dropout={layer.recurrent_dropout} masks the state feeding W_hh"
        )
    if layer.zoneout > 0:
        what = "keeps random units" if layer.training else "mixes in the previous state"
        step_changes.append(f"zoneout={layer.zoneout} {what} at every step")
    drop_connect = layer.training and layer.weight_drop > 0
    forced = _forced.get()
    if forced == "loop":
        return KernelChoice(
            fused=False,
            drop_connect=drop_connect,
            reason=f"rnnlab-loop ({mode} mode): forced by rnnlab.nn.force_loop().",
        )
    if forced == "fused_bptt":
        return KernelChoice(
            fused=False,
            drop_connect=drop_connect,
            fused_bptt=True,
            reason=f"rnnlab-fused-bptt ({mode} mode): forced by rnnlab.nn.force_fused_bptt().",
        )
    weights = " (W_hh DropConnect-masked for this call)" if drop_connect else ""
    if step_changes:
        return KernelChoice(
            fused=False,
            drop_connect=drop_connect,
            fused_bptt=True,
            reason=(
                f"rnnlab-fused-bptt ({mode} mode): "
                + "; ".join(step_changes)
                + ", which torch's fused kernel cannot compute. Input projections of all "
                "time steps run as one matrix multiply; the recurrence runs as one autograd "
                f"node per direction and layer{weights}, with hand-derived backpropagation "
                "through time and the weight gradients batched over all steps; "
                + _normalized_in_words(layer)
                + _loops_in_words(layer)
                + "."
            ),
        )
    route = _native_plain(layer, batch)
    if route is not None:
        return KernelChoice(
            fused=False,
            drop_connect=drop_connect,
            fused_bptt=True,
            reason=(
                f"rnnlab-fused-bptt ({mode} mode, CPU): no extra changes the step equations, "
                f"but for a {layer.family.upper()} with hidden_size={layer.hidden_size}"
                + (f" and batch {batch}" if batch is not None else "")
                + f" rnnlab's fused BPTT with native C++ time loops {route.gain} "
                f"(measured; rule: {route.condition()}){weights}."
            ),
        )
    if drop_connect:
        reason = (
            f"torch-fused ({mode} mode): weight_drop={layer.weight_drop} replaces W_hh by a "
            "DropConnect-masked copy (one mask per forward call) and torch's fused kernel "
            "runs with it."
        )
    else:
        inactive = [
            name
            for name, value in (
                ("recurrent_dropout", layer.recurrent_dropout),
                ("weight_drop", layer.weight_drop),
            )
            if value > 0
        ]
        note = f"; {', '.join(inactive)} inactive in eval mode" if inactive else ""
        reason = (
            f"torch-fused ({mode} mode): no extra changes the step equations{note}, so "
            "torch's own fused kernel runs (oneDNN on CPU, cuDNN on GPU), exactly as "
            "torch.nn would."
        )
    return KernelChoice(fused=True, drop_connect=drop_connect, reason=reason)
