"""Export a trained run (``rnnlab export``): the whole-sequence model and its streaming form.

:func:`export_run` loads the run with its wing's loader (language, forecasting, speech),
wraps the model (:mod:`rnnlab.export.models`), writes it in the chosen format
(:mod:`rnnlab.export.formats`), runs the file on a test batch of other sizes and lengths
than the export example (length 1 and the full length among them) and compares it with the
eager model. With ``streaming`` it does the same for the step model (state in and out), where
the model has one, next to ``out`` as ``<stem>-step<suffix>``.

Example (a trained run in ``runs/ptb-small``)::

    report = export_run("runs/ptb-small", "onnx", "ptb.onnx")
    print(report.path, report.max_abs_diff)
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.errors import RunDirError, UserError
from rnnlab.export import models
from rnnlab.export.formats import Format, Signature, check, check_format, loop_for, write
from rnnlab.export.graph import Loop, replace_recurrent
from rnnlab.training.run_dir import RunDir, check_which

__all__ = ["ExportReport", "Exportable", "export_run", "task_exportables"]

BATCH_TIME = {0: "batch", 1: "time"}
STATE = {1: "batch"}


@dataclass
class Exportable:
    """One module to export: how to build it, its signature, an example and a test batch."""

    name: str
    build: Callable[[Any], nn.Module]
    signature: Signature
    example: tuple[Tensor, ...]
    test: tuple[Tensor, ...]


@dataclass
class ExportReport:
    """What :func:`export_run` wrote and how close each file is to PyTorch."""

    task: str
    format: str
    path: Path
    bytes: int
    max_abs_diff: float
    step_path: Path | None = None
    step_bytes: int | None = None
    step_max_abs_diff: float | None = None
    notes: list[str] = field(default_factory=list)
    layer_paths: dict[str, str] = field(default_factory=dict)


def _lengths(batch: int, steps: int) -> Tensor:
    """Lengths with the full length and 1 among them (for ``batch >= 2``)."""
    values = [steps, 1, max(1, steps // 2), max(1, steps - 2)]
    return torch.tensor([values[i % len(values)] for i in range(batch)], dtype=torch.long)


def _state(recurrent: Any, batch: int, seed: int) -> tuple[Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    layers = int(getattr(recurrent, "num_layers", 1))
    hidden = int(getattr(recurrent, "hidden_size"))  # noqa: B009
    out = int(getattr(recurrent, "proj_size", 0) or hidden)
    h = 0.5 * torch.randn(layers, batch, out, generator=gen)
    if not models.is_lstm(recurrent):
        return (h,)
    return h, 0.5 * torch.randn(layers, batch, hidden, generator=gen)


def _state_names(recurrent: Any) -> tuple[str, ...]:
    return ("h", "c") if models.is_lstm(recurrent) else ("h",)


def _language(model: Any) -> list[Exportable]:
    vocab = int(model.vocab_size)
    gen = torch.Generator().manual_seed(0)

    def tokens(batch: int, steps: int) -> Tensor:
        return torch.randint(vocab, (batch, steps), generator=gen)

    items = [
        Exportable(
            "model",
            models.LanguageGraph,
            Signature(
                ("tokens", "lengths"), {"tokens": BATCH_TIME, "lengths": {0: "batch"}}, ("logits",)
            ),
            (tokens(3, 7), torch.tensor([7, 5, 3])),
            (tokens(4, 9), _lengths(4, 9)),
        )
    ]
    if not getattr(model.recurrent, "bidirectional", False):
        names = _state_names(model.recurrent)
        items.append(
            Exportable(
                "step",
                models.LanguageStep,
                Signature(
                    ("tokens", *names),
                    {"tokens": BATCH_TIME, **dict.fromkeys(names, STATE)},
                    ("logits", *(f"{n}_n" for n in names)),
                ),
                (tokens(3, 2), *_state(model.recurrent, 3, 1)),
                (tokens(4, 1), *_state(model.recurrent, 4, 2)),
            )
        )
    return items


def _forecasting(model: Any, channels: int, horizon: int) -> list[Exportable]:
    inner = getattr(model, "forecaster", model)  # ChannelIndependent wraps one
    future_size = int(getattr(inner, "future_size", 0)) if inner is model else 0
    gen = torch.Generator().manual_seed(0)

    def window(batch: int, steps: int, size: int) -> Tensor:
        return torch.randn(batch, steps, size, generator=gen)

    def future(batch: int) -> tuple[Tensor, ...]:
        return (window(batch, horizon, future_size),) if future_size else ()

    names = ("inputs", "future") if future_size else ("inputs",)
    outputs = ("mean", "variance") if getattr(inner, "gaussian", False) else ("mean",)
    dynamic = {"inputs": BATCH_TIME, "future": {0: "batch"}}
    items = [
        Exportable(
            "model",
            models.ForecastGraph,
            Signature(names, {n: dynamic[n] for n in names}, outputs),
            (window(3, 12, channels), *future(3)),
            (window(4, 17, channels), *future(4)),
        )
    ]
    try:
        models.ForecastStep(model)
    except models.StepUnsupportedError:
        return items
    states = _state_names(inner.encoder)
    step_names = ("rows", *states, *(("future",) if future_size else ()))
    step_dynamic = {"rows": BATCH_TIME, "future": {0: "batch"}, **dict.fromkeys(states, STATE)}
    items.append(
        Exportable(
            "step",
            models.ForecastStep,
            Signature(
                step_names,
                {n: step_dynamic[n] for n in step_names},
                (*outputs, *(f"{n}_n" for n in states)),
            ),
            (window(3, 2, channels), *_state(inner.encoder, 3, 1), *future(3)),
            (window(4, 1, channels), *_state(inner.encoder, 4, 2), *future(4)),
        )
    )
    return items


def _speech(model: Any) -> list[Exportable]:
    recurrent = model.recurrent
    encoder = getattr(model, "encoder", None)
    features = int(getattr(encoder, "in_features", 0) or recurrent.input_size)
    gen = torch.Generator().manual_seed(0)

    def frames(batch: int, steps: int) -> Tensor:
        return torch.randn(batch, steps, features, generator=gen)

    ctc = type(getattr(model, "head", None)).__name__ == "CTCHead"
    items = [
        Exportable(
            "model",
            models.SpeechGraph,
            Signature(
                ("features", "lengths"),
                {"features": BATCH_TIME, "lengths": {0: "batch"}},
                ("log_probs" if ctc else "logits",),
            ),
            (frames(3, 7), torch.tensor([7, 5, 3])),
            (frames(4, 11), _lengths(4, 11)),
        )
    ]
    if ctc and not getattr(recurrent, "bidirectional", False):
        names = _state_names(recurrent)
        items.append(
            Exportable(
                "step",
                models.CTCStep,
                Signature(
                    ("features", *names),
                    {"features": BATCH_TIME, **dict.fromkeys(names, STATE)},
                    ("log_probs", *(f"{n}_n" for n in names)),
                ),
                (frames(3, 4), *_state(recurrent, 3, 1)),
                (frames(4, 3), *_state(recurrent, 4, 2)),
            )
        )
    return items


def load_task_model(
    run_dir: str | os.PathLike[str], checkpoint: str
) -> tuple[str, nn.Module, list[Exportable]]:
    """The run's task name, its eval-mode model (by the wing's loader) and what to export."""
    which = check_which(checkpoint)
    config = RunDir(run_dir).require().config()
    name = config.task.name
    if name == "language":
        from rnnlab.language.run import load_run

        model: nn.Module = load_run(run_dir, checkpoint=which).model
        return name, model, _language(model)
    if name == "forecasting":
        from rnnlab.forecasting.predict import load_run as load_forecast
        from rnnlab.tasks.base import DataSpec

        task, meta, _ = load_forecast(Path(run_dir))
        if getattr(task.config.data, "decoder", None) == "segments":
            raise UserError(
                f'{run_dir}: export of segment-wise forecasters (data.decoder = "segments") '
                "is not supported yet"
            )
        future_size = len(meta["future_names"]) + len(meta["calendar_names"])
        spec = DataSpec(
            num_features=len(meta["input_names"]),
            output_size=len(meta["target_names"]),
            extra={"future_size": future_size, "horizon": int(meta["horizon"])},
        )
        model = task.build_model(spec)
        RunDir(run_dir).load_model(model, which)
        model.eval()
        return name, model, _forecasting(model, len(meta["input_names"]), int(meta["horizon"]))
    if name in ("speech-digits", "speech-ctc"):
        from rnnlab.speech.recognize import load_recognizer

        model = load_recognizer(run_dir, checkpoint=which).model
        return name, model, _speech(model)
    raise RunDirError(
        f"{run_dir} is a {name!r} run; rnnlab export handles language, forecasting, "
        "speech-digits and speech-ctc runs"
    )


def export_module(
    model: nn.Module, item: Exportable, format: Format, out: Path
) -> tuple[Path, int, float]:
    """Write ``item`` (wrapping ``model``) to ``out``; return the path, its size and the largest
    difference from the eager model on the test batch."""

    def make(loop: Loop) -> nn.Module:
        return item.build(replace_recurrent(copy.deepcopy(model), loop))

    path = write(make, item.example, item.signature, format, out)
    diff = check(path, format, item.build(model), item.test)
    return path, path.stat().st_size, diff


def step_path(out: Path) -> Path:
    """Where the streaming model goes: ``model.onnx`` -> ``model-step.onnx``."""
    return out.with_name(f"{out.stem}-step{out.suffix}")


def export_run(
    run_dir: str | os.PathLike[str],
    format: str,
    out: str | os.PathLike[str],
    checkpoint: str = "best",
    streaming: bool = True,
) -> ExportReport:
    """Export a trained run and check the file against PyTorch (``rnnlab export``).

    Args:
        run_dir: a run of task ``language``, ``forecasting``, ``speech-digits`` or
            ``speech-ctc``.
        format: ``onnx``, ``onnx-legacy``, ``torchscript`` or ``exported-program``.
        out: the file to write.
        checkpoint: ``best`` (falls back to ``last``) or ``last``.
        streaming: also export the step model (state in and out) where the model has one.

    Returns:
        An :class:`ExportReport`: paths, sizes, the largest absolute differences on a test
        batch, and notes (why there is no step model).

    Raises:
        UserError: a bad format or checkpoint name, not an exportable run, a missing export
            dependency (``pip install 'rnnlab[export]'``), or ``out`` naming a directory.
    """
    kind = check_format(format)
    target = Path(out)
    if target.is_dir():
        raise UserError(f"--out {target} is a directory; expected a file path")
    task, model, items = load_task_model(run_dir, checkpoint)
    path, size, diff = export_module(model, items[0], kind, target)
    report = ExportReport(task, kind, path, size, diff, layer_paths=layer_paths(model, kind))
    report.notes.extend(f"{name}: {how}" for name, how in report.layer_paths.items())
    steps = [i for i in items if i.name == "step"]
    if not streaming:
        return report
    if not steps:
        report.notes.append(_no_step_reason(model))
        return report
    report.step_path, report.step_bytes, report.step_max_abs_diff = export_module(
        model, steps[0], kind, step_path(target)
    )
    return report


def layer_paths(model: nn.Module, format: Format) -> dict[str, str]:
    """How each recurrent layer of ``model`` is written in ``format`` (by module name)."""
    from rnnlab.export.onnx_ops import onnx_ops_reason

    paths: dict[str, str] = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.RNNBase):
            continue
        loop = loop_for(format)
        reason = onnx_ops_reason(module) if loop == "onnx-ops" else None
        if loop == "onnx-ops" and reason is None:
            how = f"ONNX {module.mode.split('_')[0]} operator per layer"
        elif loop == "script":
            how = "scripted time loop" + (" (ONNX Loop)" if format == "onnx-legacy" else "")
        else:
            how = "Scan time loop" + (f" ({reason}: no exact ONNX operator)" if reason else "")
        paths[name or "model"] = how
    return paths


def _no_step_reason(model: nn.Module) -> str:
    builders: list[Callable[[Any], Any]]
    if isinstance(getattr(model, "recurrent", None), nn.Module) and hasattr(model, "vocab_size"):
        builders = [models.LanguageStep]
    elif hasattr(model, "horizon") or hasattr(model, "forecaster"):
        builders = [models.ForecastStep]
    else:
        builders = [models.CTCStep]
    try:
        builders[0](model)
    except UserError as err:
        return f"no streaming model: {err}"
    return "no streaming model for this run"


def task_exportables(model: nn.Module, task: str, **options: Any) -> list[Exportable]:
    """What :func:`export_run` exports for a model of ``task`` (for tests and benchmarks)."""
    if task == "language":
        return _language(model)
    if task == "forecasting":
        return _forecasting(model, int(options["channels"]), int(options["horizon"]))
    return _speech(model)
