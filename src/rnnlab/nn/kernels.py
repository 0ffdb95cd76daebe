"""Which kernel a recurrent layer runs, and why.

torch's fused kernels (oneDNN on CPU, cuDNN on GPU) compute plain RNN, LSTM and GRU layers.
They take the weights as a list, so DropConnect on ``W_hh`` still runs fused: the masked
matrix simply replaces the parameter in that list for one call, as AWD-LSTM does. Layer
normalization, recurrent dropout and zoneout change the step equations themselves, so a
layer that uses them runs rnnlab's fused BPTT (``rnnlab.nn.fused_bptt``): the input
projections of all steps as one matrix multiply, then one autograd node per direction and
layer whose backward is hand-derived backpropagation through time with the weight gradients
batched over all steps. rnnlab's reference time loop (step by step under autograd,
``RecurrentLayer._run_direction``) computes the same function; ``force_loop()`` runs it.

Three kernels, by name:

- ``torch-fused``: torch's own kernel (no step-changing extra; DropConnect allowed);
- ``rnnlab-fused-bptt``: rnnlab's fused BPTT (layer norm, recurrent dropout, zoneout), whose
  time loops run in C++ on CPU (``rnnlab.nn.native``) and on GPUs in Python
  (``rnnlab.nn.loops``), replayed as CUDA graphs once a shape repeats
  (``rnnlab.nn.cuda_graphs``: on an H200, T=100, B=32, 4-8x faster than launching them from
  Python, 1.0-2.9x cuDNN's plain layer; ``benchmarks/cuda_graphs.py``);
- ``rnnlab-loop``: the reference loop, only when forced.

Plain layers too run rnnlab's fused BPTT where it is measurably faster than torch's own CPU
kernel: in training (gradients on), on CPU, in float32/float64, with the native loops built,
for the sizes in :data:`NATIVE_PLAIN_RULES`, measured (forward+backward,
T=50, 2 threads on the project's 2-core machine; ratio rnnlab / torch.nn, median of paired
runs; ``benchmarks/plain_routing.py``, H 128-1024, one run per cell and batch, two for the
LSTM at batch 1-128):

======  ==========  ==========  ==========  ===========  ===========  ===========
cell    batch 1     batch 8     batch 32    batch 128    batch 256    batch 512
======  ==========  ==========  ==========  ===========  ===========  ===========
RNN     0.44-0.53   0.52-0.61   0.59-0.81   0.69-0.87    0.73-0.91    0.88-0.98
GRU     0.28-0.49   0.31-0.53   0.42-0.79   0.55-0.92    0.61-0.94    0.86-0.92 (H <= 256),
                                                                      1.02-1.05 (H >= 512)
LSTM    0.65-1.25   0.74-1.13   0.87-1.09   0.79-1.00    0.79-0.90
======  ==========  ==========  ==========  ===========  ===========  ===========

(LSTM by width: 1.03-1.25 at H 128 and batch <= 32, 0.95-1.04 at H 256 and batch <= 32,
0.65-1.01 at H >= 512 and batch <= 8, 0.87-1.03 at H >= 512 and batch 32.) Until this
table, the native library was compiled without OpenMP, so ATen's ``parallel_for`` ran every
native loop on one thread: the rules were then RNN and GRU at batch <= 64 (and 128 for
narrow layers) and LSTM at H >= 512, batch <= 16. torch's CPU LSTM runs oneDNN's fused RNN
kernel, which the hand-written loop beats for large batches and, at H >= 512, small ones;
torch's CPU RNN and GRU are per-step ATen loops under autograd. An LSTM
with DropConnect at batch <= 2 runs the native loops too (:data:`NATIVE_DROP_CONNECT_RULES`:
as fast as torch's kernel with the masked weights, and no masked copy of ``W_hh`` kept).
Elsewhere, on GPUs and in eval mode, torch's kernel runs.

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

# Where rnnlab's fused BPTT beats torch's CPU kernel for a plain layer in training:
# (family) -> predicate on (hidden_size, batch); batch is None when unknown (explain()).
NATIVE_PLAIN_RULES = {
    "rnn": lambda hidden, batch: (
        batch is not None and (batch <= 256 or (batch <= 512 and hidden <= 512))
    ),
    "gru": lambda hidden, batch: (
        batch is not None and (batch <= 256 or (batch <= 512 and hidden <= 256))
    ),
    "lstm": lambda hidden, batch: (
        batch is not None and ((hidden >= 512 and batch <= 16) or 128 <= batch <= 256)
    ),
}
NATIVE_PLAIN_WORDS = {
    "rnn": "batch <= 256, or batch <= 512 and hidden <= 512",
    "gru": "batch <= 256, or batch <= 512 and hidden <= 256",
    "lstm": "hidden >= 512 and batch <= 16, or batch 128-256",
}

# DropConnect through torch's kernel keeps the masked copy of W_hh (4H x H for the LSTM) for
# backward, the native loops only its mask's seed. Where that copy outweighs the activations
# and the native loops run as fast (LSTM at batch 1-2: 0.75-1.05x the time of torch's kernel
# with the masked weights, H 128-1024; benchmarks/RESULTS.md), a DropConnect layer runs them.
NATIVE_DROP_CONNECT_RULES = {
    "lstm": lambda hidden, batch: batch is not None and batch <= 2,
}
NATIVE_DROP_CONNECT_WORDS = {"lstm": "weight_drop at batch <= 2"}

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


def _native_plain(layer: HasExtras, batch: int | None) -> str | None:
    """The rule, in words, by which a layer without step-changing extras runs rnnlab's fused
    BPTT (faster there, or as fast with less memory); ``None`` where it runs torch's kernel."""
    if not (layer.training and torch.is_grad_enabled()):
        return None
    rules = [(NATIVE_PLAIN_RULES, NATIVE_PLAIN_WORDS)]
    if layer.weight_drop > 0:
        rules.append((NATIVE_DROP_CONNECT_RULES, NATIVE_DROP_CONNECT_WORDS))
    for table, words in rules:
        rule = table.get(layer.family)
        if rule is not None and rule(layer.hidden_size, batch):
            # CPU, float32/float64, built, not turned off
            return words[layer.family] if native.usable(layer.weight_hh_l0) else None
    return None


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
    rule = _native_plain(layer, batch)
    if rule is not None:
        return KernelChoice(
            fused=False,
            drop_connect=drop_connect,
            fused_bptt=True,
            reason=(
                f"rnnlab-fused-bptt ({mode} mode, CPU): no extra changes the step equations, "
                f"but for a {layer.family.upper()} with hidden_size={layer.hidden_size}"
                + (f" and batch {batch}" if batch is not None else "")
                + " rnnlab's fused BPTT with native C++ time loops trains faster than torch's "
                f"CPU kernel, or as fast keeping less (measured; rule: {rule}){weights}."
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
