"""Diagnose a model of any task: gradient flow, gate and hidden statistics, at init and trained.

The fused kernels hide per-step states, so :func:`diagnose_model` swaps the model's recurrent
layer for a :class:`TracedRecurrent` that runs the same weights step by step
(:func:`rnnlab.analysis.trace.trace`) and keeps every ``h_t``. The task's own ``step`` then
computes the training loss on one batch, exactly as in training (evaluation-mode semantics:
no dropout), and the gradient of that loss with respect to every ``h_t`` is taken::

    batch --task.step--> model(encoder -> TracedRecurrent -> head) --> loss
                                         |  keeps h_1 .. h_T (and gates)
                          dL/dh_t = autograd.grad(loss, h_t)  for every t and layer

The analysis runs in float64 (the early-step gradients of a tanh RNN over a few hundred steps
fall below float32's range) and on a copy of the model, so the model is left untouched.

:func:`diagnose` does this for a config (the model at initialization, seeded with
``train.seed``) or a run directory (at initialization and with the trained weights of
``checkpoints/best.pt``, else ``last.pt``: :meth:`~rnnlab.training.run_dir.RunDir.load_model`),
and writes ``diagnosis.json`` and PNG plots; :func:`diagnose_to_files` is what
``rnnlab diagnose`` calls (its files always written, by default beside the run).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab import config as config_mod
from rnnlab.analysis.gates import GateStat, gate_statistics_of_trace
from rnnlab.analysis.gradient_flow import GradientFlow, gradient_flow_of_states
from rnnlab.analysis.hidden import HiddenStats, hidden_statistics_of_trace
from rnnlab.analysis.plots import plot_gate_statistics, plot_gradient_flow, plot_hidden_statistics
from rnnlab.analysis.trace import State, Trace, trace
from rnnlab.config import ExperimentConfig
from rnnlab.io import atomic_write_text
from rnnlab.registry import TASKS
from rnnlab.training.run_dir import RunDir
from rnnlab.training.seeding import seed_everything


class TracedRecurrent(nn.Module):
    """Stands in for a recurrent layer: same call and outputs, computed by :func:`trace`.

    The last trace is kept in :attr:`last`.

    Args:
        layer: the ``rnnlab.nn`` / ``torch.nn`` RNN, LSTM or GRU to run step by step.
        record_gates: also record the gate activations (LSTM, GRU).
    """

    def __init__(self, layer: nn.Module, record_gates: bool = True) -> None:
        super().__init__()
        self.layer = layer
        self.record_gates = record_gates
        self.bidirectional = bool(getattr(layer, "bidirectional", False))
        self.proj_size = int(getattr(layer, "proj_size", 0))
        self.hidden_size = int(getattr(layer, "hidden_size"))  # noqa: B009
        self.last: Trace | None = None

    def forward(
        self, x: Tensor, hx: State | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, State]:
        gates = self.record_gates and getattr(self.layer, "mode", "") in ("LSTM", "GRU")
        traced = trace(self.layer, x, hx, lengths, record_gates=gates)
        self.last = traced

        def final(states: dict[str, list[Tensor]]) -> Tensor:
            ends = [
                states[r][0] if traced.reverse(r) else states[r][-1] for r in traced.rows
            ]  # each (B, H)
            return torch.stack(ends)  # (L*D, B, H)

        h_n = final(traced.hidden)
        if traced.cell:
            return traced.output, (h_n, final(traced.cell))
        return traced.output, h_n


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose_model` measured on one batch.

    Attributes:
        flow: the gradient flow (``flow.ratio()`` = ``||dL/dh_1|| / ||dL/dh_T||``).
        gates: gate statistics (empty for a simple RNN).
        hidden: hidden-state statistics.
        loss: the batch loss.
    """

    flow: GradientFlow
    gates: list[GateStat]
    hidden: HiddenStats
    loss: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "loss": self.loss,
            "gradient_ratio": self.flow.ratio(),
            "gradient_flow": self.flow.to_dict(),
            "gates": [g.to_dict() for g in self.gates],
            "hidden": self.hidden.to_dict(),
        }


def _to_double(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.double() if value.is_floating_point() else value
    if isinstance(value, tuple | list):
        return type(value)(_to_double(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_double(v) for k, v in value.items()}
    return value


def diagnose_model(task: Any, model: nn.Module, batch: Any, *, double: bool = True) -> Diagnosis:
    """Gradient flow, gate and hidden statistics of ``model`` on one training batch of ``task``.

    Args:
        task: a :class:`~rnnlab.tasks.base.Task` (its ``step`` computes the loss).
        model: a :class:`~rnnlab.models.SequenceModel` of that task (left unchanged).
        batch: one batch as the task's training loader yields it (on the CPU).
        double: run in float64 so that tiny early-step gradients do not underflow.

    Returns:
        A :class:`Diagnosis`.
    """
    if not hasattr(model, "recurrent"):
        raise ValueError(
            f"diagnose needs a SequenceModel with .recurrent, got {type(model).__name__}"
        )
    work = copy.deepcopy(model).cpu().eval()
    if double:
        work = work.double()
        batch = _to_double(batch)
    layer = work.recurrent
    if not isinstance(layer, nn.Module):
        raise ValueError(f"model.recurrent must be a module, got {type(layer).__name__}")
    traced_layer = TracedRecurrent(layer)
    work.recurrent = traced_layer
    with torch.enable_grad():
        loss, _, _ = task.step(work, batch, task.initial_state())
        traced = traced_layer.last
        if traced is None:
            raise ValueError("the task's step did not call the model's recurrent layer")
        flow = gradient_flow_of_states(loss, traced.hidden, traced.cell or None)
    gates = gate_statistics_of_trace(traced) if traced.gates else []
    hidden = hidden_statistics_of_trace(traced)
    return Diagnosis(flow=flow, gates=gates, hidden=hidden, loss=float(loss.detach()))


def _load(
    config_or_run_dir: str | os.PathLike[str] | ExperimentConfig,
) -> tuple[ExperimentConfig, RunDir | None]:
    if isinstance(config_or_run_dir, ExperimentConfig):
        return config_or_run_dir, None
    if Path(config_or_run_dir).is_dir():
        run = RunDir(config_or_run_dir)
        return run.config(), run
    return config_mod.load(config_or_run_dir), None


def _measure(
    cfg: ExperimentConfig, run: RunDir | None, batch_size: int | None
) -> dict[str, Diagnosis]:
    """The model of ``cfg`` at initialization, and with the weights of ``run`` if given."""
    task = TASKS.get(cfg.task.name)(cfg)
    seed_everything(cfg.train.seed)
    data = task.build_data()
    model = task.build_model(data.spec)
    loader = data.train
    loader.set_epoch(0)
    batch = next(iter(loader.batches()))
    if batch_size is not None:
        batch = tuple(t[:batch_size] for t in batch) if isinstance(batch, tuple) else batch
    results = {"init": diagnose_model(task, model, batch)}
    if run is not None:
        run.load_model(model, "best")
        results["trained"] = diagnose_model(task, model, batch)
    return results


def diagnose(
    config_or_run_dir: str | os.PathLike[str] | ExperimentConfig,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    batch_size: int | None = None,
) -> dict[str, Diagnosis]:
    """Diagnose a config's model at initialization, and a run's trained model.

    Args:
        config_or_run_dir: a TOML config or recipe name (the model at initialization, seeded
            with ``train.seed``), a loaded config, or a run directory (initialization and the
            trained weights of ``checkpoints/best.pt``, else ``last.pt``).
        out_dir: where ``diagnosis.json`` and the plots go; default ``<run_dir>/diagnosis``
            for a run directory, none (nothing written) for a config.
        batch_size: sequences in the analyzed batch (default ``train.batch_size``).

    Returns:
        ``{"init": Diagnosis}``, plus ``"trained"`` for a run directory.
    """
    cfg, run = _load(config_or_run_dir)
    results = _measure(cfg, run, batch_size)
    target = Path(out_dir) if out_dir is not None else (run.path / "diagnosis" if run else None)
    if target is not None:
        write_diagnosis(results, target, label=f"{cfg.task.name} {cfg.model.cell}")
    return results


def default_out_dir(config_or_run_dir: str | os.PathLike[str]) -> Path:
    """Where ``rnnlab diagnose`` writes unless told: ``<run_dir>/diagnosis`` for a run
    directory, ``diagnosis`` in the working directory for a config or recipe."""
    path = Path(config_or_run_dir)
    return path / "diagnosis" if path.is_dir() else Path("diagnosis")


def diagnose_to_files(
    config_or_run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    batch_size: int | None = None,
) -> tuple[dict[str, Diagnosis], list[Path]]:
    """What ``rnnlab diagnose`` does: :func:`diagnose`, always writing its files.

    Args:
        config_or_run_dir: a run directory, a TOML config or a recipe name.
        out_dir: where the files go; default :func:`default_out_dir`.
        batch_size: as in :func:`diagnose`.

    Returns:
        The diagnoses (as :func:`diagnose`) and the plots written beside ``diagnosis.json``,
        labelled with the name of ``config_or_run_dir``.
    """
    cfg, run = _load(config_or_run_dir)
    results = _measure(cfg, run, batch_size)
    target = Path(out_dir) if out_dir is not None else default_out_dir(config_or_run_dir)
    return results, write_diagnosis(results, target, label=Path(config_or_run_dir).name)


def write_diagnosis(results: dict[str, Diagnosis], out_dir: Path, label: str) -> list[Path]:
    """Write ``diagnosis.json``, ``gradient_flow.png``, ``hidden.png`` (and ``gates.png``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out_dir / "diagnosis.json",
        json.dumps({k: v.to_dict() for k, v in results.items()}, indent=1),
    )
    written = [
        plot_gradient_flow(
            {f"{label} ({k})": v.flow for k, v in results.items()},
            out_dir / "gradient_flow.png",
            title="mean ||dL/dh_t|| over the batch",
        ),
        plot_hidden_statistics(
            {f"{label} ({k})": v.hidden for k, v in results.items()}, out_dir / "hidden.png"
        ),
    ]
    gates = {f"{label} ({k})": v.gates for k, v in results.items() if v.gates}
    if gates:
        written.append(plot_gate_statistics(gates, out_dir / "gates.png"))
    return written
