"""Deploy what you trained: ONNX / TorchScript / ``torch.export`` files and streaming step models.

- :mod:`rnnlab.export.graph`: the export-friendly recurrence (an explicit masked time loop
  over a trained layer's weights: lengths, both directions, stacked, eval-mode extras).
- :mod:`rnnlab.export.models`: each task's model with deployment inputs and outputs, and the
  step models (state in and out) for generation, one-step-ahead forecasting and chunked
  recognition.
- :mod:`rnnlab.export.formats`: writing each format and checking the file against PyTorch.
- :mod:`rnnlab.export.run`: :func:`export_run`, the Python form of ``rnnlab export``.

Example (a trained run)::

    from rnnlab.export import export_run
    report = export_run("runs/fsdd-ctc", "onnx", "ctc.onnx")
    print(report.max_abs_diff, report.step_path)
"""

from rnnlab.export.formats import FORMATS, MissingExportDependencyError
from rnnlab.export.graph import ExportRecurrent, replace_recurrent
from rnnlab.export.run import ExportReport, export_run

__all__ = [
    "FORMATS",
    "ExportRecurrent",
    "ExportReport",
    "MissingExportDependencyError",
    "export_run",
    "replace_recurrent",
]
