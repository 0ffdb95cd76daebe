"""Write a model as ONNX, TorchScript or a ``torch.export`` program, and check it against PyTorch.

=====================  ===========================================================  =========
format                 how                                                           file
=====================  ===========================================================  =========
``onnx``               ``torch.export`` then the dynamo ONNX exporter: plain layers  ``.onnx``
                       as ONNX ``LSTM``/``GRU``/``RNN`` operators, the others as a
                       ``Scan`` loop (:mod:`rnnlab.export.onnx_ops`); onnxruntime
``onnx-legacy``        ``torch.jit.trace`` (scripted loop) then the TorchScript-      ``.onnx``
                       based ONNX exporter (an ONNX ``Loop``); not for ``proj_size``
``torchscript``        ``torch.jit.trace`` of the model around the scripted loop     ``.pt``
``exported-program``   ``torch.export.export`` + ``torch.export.save``               ``.pt2``
=====================  ===========================================================  =========

Every format keeps the batch and time dimensions dynamic (:class:`Signature` names them).
:func:`check` runs the written file on a test batch (other sizes and lengths than the
example the export traced) and returns the largest absolute difference from the eager model.

Example:
    >>> import torch, rnnlab
    >>> from rnnlab.export.graph import replace_recurrent
    >>> layer = rnnlab.GRU(3, 4, batch_first=True).eval()
    >>> class Last(torch.nn.Module):
    ...     def __init__(self, r): super().__init__(); self.r = r
    ...     def forward(self, x, lengths): return self.r(x, None, lengths)[0]
    >>> sig = Signature(("x", "lengths"), {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}},
    ...                 ("out",))
    >>> make = lambda loop: Last(replace_recurrent(copy.deepcopy(layer), loop))
    >>> example = (torch.randn(2, 6, 3), torch.tensor([6, 2]))
    >>> path = write(make, example, sig, "torchscript", "/tmp/gru.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from rnnlab.errors import UserError
from rnnlab.export.graph import Loop

Format = Literal["onnx", "onnx-legacy", "torchscript", "exported-program"]
FORMATS: tuple[str, ...] = ("onnx", "onnx-legacy", "torchscript", "exported-program")
SUFFIXES = {
    "onnx": ".onnx",
    "onnx-legacy": ".onnx",
    "torchscript": ".pt",
    "exported-program": ".pt2",
}
INSTALL_HINT = "pip install 'rnnlab[export]'"

__all__ = [
    "FORMATS",
    "Format",
    "MissingExportDependencyError",
    "Signature",
    "check",
    "check_format",
    "largest_difference",
    "write",
]


class MissingExportDependencyError(UserError):
    """onnx / onnxruntime / onnxscript is not installed."""


@dataclass(frozen=True)
class Signature:
    """The exported function's inputs (in order), their dynamic dimensions, its outputs.

    ``dynamic`` maps an input name to ``{dimension: symbol}``; inputs sharing a symbol
    (``"batch"``) share the size.
    """

    inputs: tuple[str, ...]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()


def check_format(format: str) -> Format:
    """``format`` if it is one of :data:`FORMATS`, else a :class:`UserError`."""
    if format not in FORMATS:
        raise UserError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    return format  # type: ignore[return-value]


def loop_for(format: Format) -> Loop:
    """The time-loop form each format needs (see :mod:`rnnlab.export.graph`)."""
    if format == "onnx":
        return "onnx-ops"  # ONNX LSTM/GRU/RNN operators where exact, else the scan loop
    return "script" if format in ("torchscript", "onnx-legacy") else "scan"


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise MissingExportDependencyError(
            f"ONNX export needs onnx, onnxruntime and onnxscript ({err.name} is missing): "
            f"{INSTALL_HINT}"
        ) from None


def _dynamic_shapes(signature: Signature) -> dict[str, Any]:
    dims: dict[str, Any] = {}
    shapes: dict[str, Any] = {}
    for name in signature.inputs:
        spec = signature.dynamic.get(name)
        if spec is None:
            shapes[name] = None
            continue
        shapes[name] = {
            axis: dims.setdefault(symbol, torch.export.Dim(symbol, min=1, max=1_000_000))
            for axis, symbol in spec.items()
        }
    return shapes


def _translations() -> dict[Any, Any]:
    from rnnlab.export.onnx_ops import TRANSLATIONS

    return TRANSLATIONS


def _exported(module: nn.Module, example: Sequence[Tensor], signature: Signature) -> Any:
    torch._dynamo.reset()  # a cache from an earlier export can specialize a dynamic size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.export.export(
            module, tuple(example), dynamic_shapes=_dynamic_shapes(signature), strict=False
        )


def write(
    make: Callable[[Loop], nn.Module],
    example: Sequence[Tensor],
    signature: Signature,
    format: Format,
    out: str | os.PathLike[str],
) -> Path:
    """Export ``make(loop)`` (an eval-mode module) traced on ``example`` to ``out``.

    Args:
        make: builds the module to export for a loop form (``"scan"`` or ``"script"``).
        example: the example inputs, in ``signature.inputs`` order.
        signature: input and output names and the dynamic dimensions.
        format: one of :data:`FORMATS`.
        out: the file to write (its folder is created).

    Raises:
        MissingExportDependencyError: ONNX asked for without onnx/onnxruntime/onnxscript.
    """
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = make(loop_for(format)).eval()
    # torch.export runs with autograd on: under no_grad, scan over a stacked layer-normalized
    # recurrence specializes the batch size (torch 2.13).
    if format == "onnx":
        _require_onnx()
        program = _exported(module, example, signature)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_program = torch.onnx.export(
                program,
                tuple(example),
                dynamo=True,
                input_names=list(signature.inputs),
                output_names=list(signature.outputs) or None,
                external_data=False,
                verbose=False,
                custom_translation_table=_translations(),
            )
        if onnx_program is None:  # pragma: no cover - dynamo=True returns the program
            raise RuntimeError("torch.onnx.export returned no program")
        onnx_program.save(str(path), external_data=False)
    elif format == "exported-program":
        torch.export.save(_exported(module, example, signature), str(path))
    else:
        with torch.no_grad():
            traced = _traced(module, example)
        if format == "torchscript":
            torch.jit.save(traced, str(path))
        else:
            _require_onnx()
            _legacy_onnx(traced, example, signature, path)
    return path


def _traced(module: nn.Module, example: Sequence[Tensor]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(module, tuple(example), check_trace=False)


def _legacy_onnx(traced: Any, example: Sequence[Tensor], signature: Signature, path: Path) -> None:
    axes: dict[str, dict[int, str]] = dict(signature.dynamic)
    for name in signature.outputs:  # outputs: dimension 0 and 1 follow the first input's
        axes.setdefault(name, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            traced,
            tuple(example),
            str(path),
            dynamo=False,
            input_names=list(signature.inputs),
            output_names=list(signature.outputs),
            dynamic_axes={k: v for k, v in axes.items() if v},
        )


def _flatten(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in _flatten(v)]
    raise TypeError(f"unexpected model output {type(value).__name__}")


def run_file(
    path: str | os.PathLike[str], format: Format, inputs: Sequence[Tensor]
) -> list[Tensor]:
    """Run an exported file on ``inputs``; its outputs as a flat list of tensors."""
    if format in ("onnx", "onnx-legacy"):
        _require_onnx()
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        feed = {n: t.detach().cpu().numpy() for n, t in zip(names, inputs, strict=True)}
        return [torch.from_numpy(a) for a in session.run(None, feed)]
    with torch.no_grad():
        if format == "torchscript":
            return _flatten(torch.jit.load(str(path))(*inputs))
        return _flatten(torch.export.load(str(path)).module()(*inputs))


def largest_difference(got: Sequence[Tensor], expected: Any) -> float:
    """The largest absolute difference between two flat lists of outputs (shapes must agree)."""
    want = _flatten(expected)
    if len(got) != len(want):
        raise RuntimeError(f"the exported model gives {len(got)} outputs, PyTorch {len(want)}")
    worst = 0.0
    for a, b in zip(got, want, strict=True):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"output shape {tuple(a.shape)} != PyTorch's {tuple(b.shape)}")
        if a.numel():
            worst = max(worst, float((a.double() - b.detach().double()).abs().max()))
    return worst


def check(
    path: str | os.PathLike[str],
    format: Format,
    reference: nn.Module,
    inputs: Sequence[Tensor],
) -> float:
    """The largest absolute difference between the file at ``path`` and ``reference`` (the eager
    model, in eval mode) on ``inputs``."""
    with torch.no_grad():
        expected = copy.deepcopy(reference).eval()(*inputs)
    return largest_difference(run_file(path, format, inputs), expected)
