"""rnnlab's native CPU recurrence (``csrc/recurrence.cpp``), built on first use.

The time loops of :mod:`rnnlab.nn.fused_bptt` run here in C++ for CPU tensors of float32 or
float64: each thread owns a block of batch rows for the whole loop and runs, per step, one
BLAS matrix multiply on its rows and one fused, vectorized pass over them (layer norm,
gates, zoneout, lengths), with no Python and no barrier between the steps. The Python loops in
``fused_bptt`` compute the same thing and remain the path for GPUs, other dtypes and
machines without a C++ compiler.

The extension is compiled once with ``torch.utils.cpp_extension`` (``-O3 -fopenmp
-march=native -fno-trapping-math``, about 30 s on two cores) into ``$RNNLAB_CACHE/native/``
(``~/.cache/rnnlab/native/``), in a folder named after the torch version, the CPU's
instruction-set flags and a hash of the source and the compiler flags, so an upgrade or
another CPU model sharing the home directory gets its own build, and concurrent processes
share one.
``RNNLAB_NATIVE=0`` turns it off (the Python loops run).

Example:
    >>> import torch
    >>> from rnnlab.nn import native
    >>> isinstance(native.status(), str)
    True
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import torch

from rnnlab.cache import cache_dir

SOURCE = Path(__file__).with_name("csrc") / "recurrence.cpp"
LIBRARY = "rnnlab_native"
# -fno-trapping-math lets GCC vectorize the clamped exp of the gate activations.
CFLAGS = ("-O3", "-fno-trapping-math", "-march=native")
# The builds tried in turn: with OpenMP, then without (a compiler without it, e.g. Apple's
# clang). ATen's parallel_for is a header template that splits work between threads only in
# a file compiled with OpenMP: without it every loop here runs on one thread (the BLAS calls
# inside still use all of them). torch's own libgomp is already loaded when the library is,
# and the library binds to that one.
BUILDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    ((*CFLAGS, "-fopenmp"), ("-fopenmp",)),
    ((*CFLAGS, "-fopenmp-simd"), ()),
)

_loaded: dict[str, Any] = {}
_python_only: ContextVar[bool] = ContextVar("rnnlab_python_loops", default=False)


@contextmanager
def python_loops() -> Iterator[None]:
    """Run the Python loops of ``fused_bptt`` inside this block, even where these are built.

    For comparisons (tests, benchmarks): both compute the same function.

    Example:
        >>> import torch
        >>> from rnnlab.nn import native
        >>> with native.python_loops():
        ...     native.usable(torch.zeros(1))
        False
    """
    token = _python_only.set(True)
    try:
        yield
    finally:
        _python_only.reset(token)


def _cpu_fingerprint() -> str:
    """The CPU's instruction-set flags, hashed: the build uses ``-march=native``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        flags = ""
    flags = flags or platform.machine() + platform.processor()
    return hashlib.sha256(flags.encode()).hexdigest()[:8]


def _build_directory(
    cflags: tuple[str, ...], ldflags: tuple[str, ...], source_file: Path = SOURCE
) -> Path:
    flags = " ".join(cflags + ldflags).encode()
    source = hashlib.sha256(source_file.read_bytes() + flags).hexdigest()[:12]
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    system = sysconfig.get_platform().replace("-", "_")
    name = f"torch{torch.__version__}-{python}-{system}-cpu{_cpu_fingerprint()}-{source}"
    prefix = "" if source_file == SOURCE else f"{source_file.stem}-"
    return cache_dir() / "native" / f"{prefix}{name}"


def _missing_tool() -> str | None:
    compilers = (os.environ.get("CXX"), shutil.which("c++"), shutil.which("g++"))
    if not any(compilers):
        return "no C++ compiler (c++/g++) on PATH"
    if shutil.which("ninja") is None:  # the pip package's binary, outside an activated venv
        try:
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass
    try:
        from torch.utils.cpp_extension import verify_ninja_availability

        verify_ninja_availability()
    except RuntimeError:
        return "ninja is not installed (pip install ninja)"
    return None


def _load() -> Any | None:
    if "ops" in _loaded:
        return _loaded["ops"]
    ops: Any | None = None
    if os.environ.get("RNNLAB_NATIVE", "1") == "0":
        _loaded["reason"] = "turned off by RNNLAB_NATIVE=0"
    elif (missing := _missing_tool()) is not None:
        _loaded["reason"] = missing
    else:
        ops = _compile()
    _loaded["ops"] = ops
    return ops


def _compile() -> Any | None:
    first_failure = ""
    for cflags, ldflags in BUILDS:
        build = _build_directory(cflags, ldflags)
        failure = _build(build, cflags, ldflags)
        if failure is None:
            _loaded["reason"] = f"built in {build}"
            return getattr(torch.ops, LIBRARY)
        first_failure = first_failure or f"the build failed ({failure}); see {build}"
    _loaded["reason"] = first_failure
    return None


def _build(
    build: Path,
    cflags: tuple[str, ...],
    ldflags: tuple[str, ...],
    source: Path = SOURCE,
    library: str = LIBRARY,
) -> str | None:
    """Builds and loads the library into ``build``; the error's first line where it fails."""
    from torch.utils.cpp_extension import load

    try:
        build.mkdir(parents=True, exist_ok=True)
        if not any(build.glob(f"{library}*.so")):
            print(
                f"rnnlab: building the native CPU kernel {source.name} in {build} "
                "(first use only, about 30 s)",
                file=sys.stderr,
                flush=True,
            )
        load(
            name=library,
            sources=[str(source)],
            build_directory=str(build),
            extra_cflags=list(cflags),
            extra_ldflags=list(ldflags),
            is_python_module=False,
            verbose=False,
        )
    except Exception as error:  # a failed build leaves the Python loops in charge
        text = str(error).strip()
        return text.splitlines()[0] if text else repr(error)
    return None


def ops() -> Any:
    """The compiled ops (``torch.ops.rnnlab_native``); check :func:`usable` or :func:`built` first.

    Raises:
        RuntimeError: where they cannot be built (:func:`status` says why).
    """
    loaded = _load()
    if loaded is None:
        raise RuntimeError(f"rnnlab native loops {status()}")
    return loaded


def built() -> bool:
    """Whether the native ops are built (building them now if they can be)."""
    return _load() is not None


def python_forced() -> bool:
    """Whether the caller is inside :func:`python_loops`."""
    return _python_only.get()


def tensors_fit(*tensors: torch.Tensor | None) -> bool:
    """Whether a native CPU kernel may take these tensors (``None`` ignored): all on the CPU,
    one float32/float64 dtype, and not inside :func:`python_loops`."""
    present = [t for t in tensors if t is not None]
    if not present or _python_only.get():
        return False
    first = present[0]
    if first.device.type != "cpu" or first.dtype not in (torch.float32, torch.float64):
        return False
    return all(t.device.type == "cpu" and t.dtype == first.dtype for t in present)


def usable(*tensors: torch.Tensor | None) -> bool:
    """Whether the native loops can run on these tensors: CPU, one float32/float64 dtype, built."""
    return tensors_fit(*tensors) and _load() is not None


def status() -> str:
    """One line: whether the native loops are available, and why not if they are not."""
    if "ops" not in _loaded:
        return "not built yet (built on the first CPU float32/float64 call)"
    if _loaded["ops"] is None:
        return f"unavailable: {_loaded.get('reason', 'unknown reason')}"
    details = [f"loops split between {_loaded['ops'].parallel_threads()} threads by batch rows"]
    if _loaded["ops"].packed_gemm():
        details.append("float32 step weights packed once per loop: MKL")
    return f"available ({'; '.join(details)})"


_extensions: dict[str, tuple[Any | None, str]] = {}


def extension(library: str, source: Path) -> tuple[Any | None, str]:
    """Another native library of rnnlab (e.g. ``csrc/scan.cpp``), built and loaded on first use.

    Built like the recurrence library (same flags, tools, cache folder and ``RNNLAB_NATIVE=0``
    switch), as its own shared library, so a change to one source rebuilds only that one.

    Returns:
        ``(torch.ops.<library>, reason)``, or ``(None, reason)`` where it cannot be built.
    """
    if library in _extensions:
        return _extensions[library]
    result: tuple[Any | None, str]
    if os.environ.get("RNNLAB_NATIVE", "1") == "0":
        result = (None, "turned off by RNNLAB_NATIVE=0")
    elif (missing := _missing_tool()) is not None:
        result = (None, missing)
    else:
        result = (None, "")
        for cflags, ldflags in BUILDS:
            build = _build_directory(cflags, ldflags, source)
            failure = _build(build, cflags, ldflags, source, library)
            if failure is None:
                result = (getattr(torch.ops, library), f"built in {build}")
                break
            result = (None, result[1] or f"the build failed ({failure}); see {build}")
    _extensions[library] = result
    return result
