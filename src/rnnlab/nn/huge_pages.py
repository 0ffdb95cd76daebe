"""Transparent huge pages for rnnlab's large CPU buffers.

A training step of a layer with extras allocates a dozen ``(T, B, G*H)`` buffers (gates,
layer-norm inputs, their gradients): 13 to 80 MB each at ``T=100, B=128``. glibc serves a
block above its mmap threshold (at most 32 MB) with a fresh mapping, and the kernel faults
its pages in one 4 KiB page at a time on first write: measured on the project's 2-core VM,
an LSTM step with layer norm at hidden 256, batch 128 took 104,000 page faults (torch.nn's
own LSTM: 45,000), a third of the step's time. Asking for transparent huge pages on the
buffer before its first write (``madvise(MADV_HUGEPAGE)`` on its 2 MiB-aligned interior)
cuts that by up to 512x. This is what PyTorch's ``THP_MEM_ALLOC_ENABLE=1`` does for every
allocation of the process; here only rnnlab's own buffers are advised, so importing rnnlab
changes nothing else.

It applies on Linux where ``/sys/kernel/mm/transparent_hugepage/enabled`` is ``madvise``
(with ``always`` the kernel does it anyway, with ``never`` it cannot), to CPU tensors of at
least 4 MiB. ``RNNLAB_HUGE_PAGES=0`` turns it off.

Example:
    >>> import torch
    >>> buffer = empty_like(torch.empty(100, 128, 256))  # advised when it applies
    >>> buffer.shape
    torch.Size([100, 128, 256])
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from pathlib import Path

import torch
from torch import Tensor

HUGE_PAGE = 2 << 20  # bytes (x86-64 and arm64 with 4 KiB base pages)
MIN_BYTES = 2 * HUGE_PAGE  # smaller buffers: at most one huge page would fit inside
MADV_HUGEPAGE = 14  # <asm-generic/mman-common.h>
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@functools.cache
def _madvise() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """libc's ``madvise`` where advising helps (see the module doc), else ``None``."""
    if os.environ.get("RNNLAB_HUGE_PAGES", "1") == "0" or not sys.platform.startswith("linux"):
        return None
    try:
        if "[madvise]" not in THP_SETTING.read_text():
            return None
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


# glibc's mmap threshold grows with the blocks freed, up to this (64-bit): larger blocks are
# fresh mappings at every allocation, smaller ones come back from its heap, already faulted in.
FRESH_MAPPING_BYTES = 32 << 20


def fresh_pages(nbytes: int) -> bool:
    """Whether a CPU buffer of ``nbytes`` comes with fresh pages at every allocation."""
    return nbytes > FRESH_MAPPING_BYTES


def active() -> bool:
    """Whether rnnlab advises its large CPU buffers to use transparent huge pages."""
    return _madvise() is not None


def advise(tensor: Tensor) -> Tensor:
    """Asks for huge pages on ``tensor``'s storage (before its first write); returns it.

    A hint only: the contents and the tensor are untouched, and where it does not apply
    (see the module doc) nothing happens.
    """
    if tensor.device.type != "cpu":
        return tensor
    storage = tensor.untyped_storage()
    size = storage.nbytes()
    madvise = _madvise() if size >= MIN_BYTES else None
    if madvise is None:
        return tensor
    start = storage.data_ptr()
    first = -(-start // HUGE_PAGE) * HUGE_PAGE  # the aligned interior [first, last)
    last = (start + size) // HUGE_PAGE * HUGE_PAGE
    if last > first:
        madvise(first, last - first, MADV_HUGEPAGE)  # a failure only means no huge pages
    return tensor


def empty_like(tensor: Tensor) -> Tensor:
    """``torch.empty_like(tensor)`` (contiguous), advised."""
    return advise(torch.empty_like(tensor, memory_format=torch.contiguous_format))


def contiguous(tensor: Tensor) -> Tensor:
    """``tensor.contiguous()``, a copy (when one is made) advised."""
    return tensor if tensor.is_contiguous() else empty_like(tensor).copy_(tensor)


def new_empty(like: Tensor, *shape: int) -> Tensor:
    """``like.new_empty(shape)``, advised."""
    return advise(like.new_empty(shape))


def product(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` into an advised buffer (outside autograd: inside a Function's passes)."""
    return torch.matmul(a, b, out=new_empty(a, *a.shape[:-1], b.shape[-1]))


def projection(x: Tensor, w: Tensor) -> Tensor:
    """``x @ w.T`` into an advised buffer (outside autograd)."""
    return product(x, w.t())
