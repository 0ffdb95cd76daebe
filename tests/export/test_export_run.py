"""``rnnlab export`` end to end: a tiny run of each task, exported through the command line; the
printed difference from PyTorch is tiny and the files load in onnxruntime; the step models fed
chunk by chunk equal the whole-sequence run."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

import rnnlab
from rnnlab.cli.export import register
from rnnlab.export.formats import run_file
from rnnlab.export.run import export_module, export_run, load_task_model, task_exportables
from rnnlab.forecasting.model import RNNForecaster
from rnnlab.models import SequenceModel
from rnnlab.speech.model import CTCHead

onnxruntime = pytest.importorskip("onnxruntime")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rnnlab.api as api  # noqa: E402
from cli.test_recognize import train as train_speech  # noqa: E402
from forecasting.helpers import train_run as train_forecast  # noqa: E402
from language.helpers import base_config, write_corpus  # noqa: E402

runner = CliRunner()


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


def export(*args: str) -> Any:
    return runner.invoke(make_app(), ["export", *args])


def differences(output: str) -> list[float]:
    return [float(v) for v in re.findall(r"largest difference from PyTorch (\S+)", output)]


@pytest.fixture(scope="module")
def language_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lm")
    config = base_config(write_corpus(root / "corpus", repeats=5), "model.cell=gru")
    api.train(config, run_dir=root / "run", quiet=None)
    return root / "run"


def test_language_run_exports_to_onnx_with_a_step_model(language_run: Path, tmp_path: Path) -> None:
    result = export(str(language_run), "--format", "onnx", "--out", str(tmp_path / "lm.onnx"))
    assert result.exit_code == 0, result.output
    diffs = differences(result.output)
    assert len(diffs) == 2 and max(diffs) < 1e-5, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "lm.onnx"))
    assert [i.name for i in session.get_inputs()] == ["tokens", "lengths"]
    step = onnxruntime.InferenceSession(str(tmp_path / "lm-step.onnx"))
    assert [i.name for i in step.get_inputs()] == ["tokens", "h"]


def test_streaming_language_model_chunk_by_chunk_equals_whole(
    language_run: Path, tmp_path: Path
) -> None:
    report = export_run(language_run, "torchscript", tmp_path / "lm.pt")
    assert report.step_path is not None and report.step_max_abs_diff is not None
    whole = torch.jit.load(str(report.path))
    step = torch.jit.load(str(report.step_path))
    tokens = torch.randint(10, (2, 9))
    with torch.no_grad():
        want = whole(tokens, torch.tensor([9, 9]))
        h = torch.zeros(1, 2, 16)
        pieces = []
        for chunk in tokens.split([1, 3, 5], dim=1):
            logits, h = step(chunk, h)
            pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), want, atol=1e-5, rtol=0)


def test_forecasting_run_exports_to_an_exported_program(tmp_path: Path) -> None:
    run = train_forecast(tmp_path, epochs=1)
    result = export(str(run), "--format", "exported-program", "--out", str(tmp_path / "f.pt2"))
    assert result.exit_code == 0, result.output
    diffs = differences(result.output)
    assert diffs and max(diffs) < 1e-5, result.output
    assert "instance_norm" in result.output  # no streaming form, and why
    test = load_task_model(run, "best")[2][0].test  # inputs (4, 17, C_in), future (4, 5, C_f)
    mean, variance = run_file(tmp_path / "f.pt2", "exported-program", test)
    assert mean.shape == (4, 5, 1) and bool((variance > 0).all())


def test_forecasting_step_model_streams_one_step_ahead(tmp_path: Path) -> None:
    # The streaming forecaster (a run trained with data.instance_norm = "off"), checked on a
    # model built here to keep the test fast.
    torch.manual_seed(0)
    model = RNNForecaster(3, 1, 5, hidden_size=8, layer="lstm", future_size=2).eval()
    model_item, step_item = task_exportables(model, "forecasting", channels=3, horizon=5)
    _, _, diff = export_module(model, model_item, "onnx", tmp_path / "f.onnx")
    _, _, step_diff = export_module(model, step_item, "onnx", tmp_path / "f-step.onnx")
    assert diff < 1e-5 and step_diff < 1e-5
    whole = onnxruntime.InferenceSession(str(tmp_path / "f.onnx"))
    step = onnxruntime.InferenceSession(str(tmp_path / "f-step.onnx"))
    inputs, future = torch.randn(2, 20, 3).numpy(), torch.randn(2, 5, 2).numpy()
    want = whole.run(None, {"inputs": inputs, "future": future})[0]
    h, c = torch.zeros(1, 2, 8).numpy(), torch.zeros(1, 2, 8).numpy()
    for chunk in (inputs[:, :7], inputs[:, 7:8], inputs[:, 8:]):
        got, h, c = step.run(None, {"rows": chunk, "h": h, "c": c, "future": future})
    assert abs(got - want).max() < 1e-5


def test_bidirectional_ctc_run_exports_and_says_why_it_has_no_step_model(tmp_path: Path) -> None:
    ctc = {"train_utterances": 16, "valid_utterances": 8, "test_utterances": 8, "max_digits": 2}
    run = train_speech(tmp_path / "ctc", "speech-ctc", {**ctc}, 1)
    result = export(str(run), "--format", "onnx", "--out", str(tmp_path / "ctc.onnx"))
    assert result.exit_code == 0, result.output
    assert max(differences(result.output)) < 1e-5
    assert "bidirectional" in result.output  # the recipe's GRU is bidirectional: no step model


def test_ctc_step_model_recognizes_chunk_by_chunk_as_the_whole_utterance(tmp_path: Path) -> None:
    torch.manual_seed(0)
    recurrent = rnnlab.GRU(8, 12, num_layers=2, batch_first=True)
    model = SequenceModel(torch.nn.Identity(), recurrent, CTCHead(12, 4)).eval()
    model_item, step_item = task_exportables(model, "speech-ctc")
    _, _, diff = export_module(model, model_item, "onnx", tmp_path / "c.onnx")
    _, _, step_diff = export_module(model, step_item, "onnx", tmp_path / "c-step.onnx")
    assert diff < 1e-5 and step_diff < 1e-5
    whole = onnxruntime.InferenceSession(str(tmp_path / "c.onnx"))
    step = onnxruntime.InferenceSession(str(tmp_path / "c-step.onnx"))
    features = torch.randn(2, 13, 8).numpy()
    lengths = torch.tensor([13, 13]).numpy()
    want = whole.run(None, {"features": features, "lengths": lengths})[0]  # (B, T, K)
    h = torch.zeros(2, 2, 12).numpy()
    pieces = []
    for chunk in (features[:, :1], features[:, 1:6], features[:, 6:]):  # 1, 5 and 7 frames
        log_probs, h = step.run(None, {"features": chunk, "h": h})
        pieces.append(log_probs)
    assert np.abs(np.concatenate(pieces, axis=1) - want).max() < 1e-5


def test_speech_digits_and_unidirectional_ctc_export_to_torchscript(tmp_path: Path) -> None:
    digits = train_speech(tmp_path / "digits", "speech-digits", {}, 1)
    report = export_run(digits, "torchscript", tmp_path / "d.pt")
    assert report.max_abs_diff < 1e-5 and report.step_path is None
    ctc = {"train_utterances": 16, "valid_utterances": 8, "test_utterances": 8, "max_digits": 2}
    uni = train_speech(tmp_path / "uni", "speech-ctc", ctc, 1)
    config = (uni / "config.toml").read_text()
    assert "bidirectional = true" in config
    (uni / "config.toml").write_text(
        config.replace("bidirectional = true", "bidirectional = false")
    )
    # the bidirectional weights no longer fit: a one-line error, exit code 2
    result = export(str(uni), "--format", "torchscript", "--out", str(tmp_path / "u.pt"))
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_bad_format_and_not_a_run_are_one_line_errors(tmp_path: Path) -> None:
    result = export(str(tmp_path), "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2
    result = export(str(tmp_path), "--format", "tflite", "--out", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2 and "tflite" in result.output
