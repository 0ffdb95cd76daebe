"""Batch-1 latency of exported models: onnxruntime and TorchScript against eager PyTorch.

The cases of the issue "Deploy what you trained", at batch 1 on the CPU (untrained weights:
the timings do not depend on them):

- ``lm``: the language task's model at the ptb-small shape with LSTM 256 (vocab 10000,
  embedding 256, 2 x LSTM 256), 35 tokens in, logits out (``LanguageGraph``);
- ``lm-step``: the same model's one-token step (token and state in, logits and state out),
  as generation calls it;
- ``fsdd``: the ``fsdd-gru`` recipe's model (2-layer bidirectional GRU 128 over 39 MFCC
  features, mean-pooled, 10 classes), 100 frames (1 s at the recipe's 10 ms hop).

Every implementation of a case runs in this one process, interleaved call by call (so load
on a shared machine hits them alike): eager PyTorch (the rnnlab model in eval mode under
``torch.inference_mode``), TorchScript, onnxruntime over the graph with ONNX's own
recurrent operators (``LSTM``/``GRU``/``RNN``, the default ``onnx`` export) and over the
``Scan`` loop graph (the earlier export). onnxruntime gets ``intra_op_num_threads`` = the
torch thread count and all graph optimizations. Medians; throughput = 1 / median latency.

    python benchmarks/export_latency.py                  # 1 thread, 200 repeats
    python benchmarks/export_latency.py --threads 2 --repeats 300 --cases lm fsdd
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from torch import Tensor, nn

from rnnlab.config.files import load
from rnnlab.export.formats import write
from rnnlab.export.graph import Loop, replace_recurrent
from rnnlab.export.run import Exportable, task_exportables
from rnnlab.language.model import LanguageModel
from rnnlab.models.heads import ClassificationHead
from rnnlab.models.sequence import build_sequence_model

Run = Callable[[], object]


def language_model() -> nn.Module:
    """The language task's model for ptb-small with 2 x LSTM 256 (embedding 256)."""
    model_config = load("ptb-small").model.model_copy(
        update={"hidden_size": 256, "embedding_size": 256}
    )
    return LanguageModel(10000, 256, model_config, init_range=0.1).eval()


def fsdd_model() -> nn.Module:
    """The fsdd-gru recipe's speech-digits model (39 features, 10 digits)."""
    config = load("fsdd-gru").model
    return build_sequence_model(
        config, 39, None, lambda size: ClassificationHead(size, 10, config.pooling)
    ).eval()


def case_inputs(name: str, model: nn.Module) -> tuple[Exportable, tuple[Tensor, ...]]:
    """The exportable (builder, signature, example) and the batch-1 input of a case."""
    gen = torch.Generator().manual_seed(0)
    if name == "fsdd":
        item = task_exportables(model, "speech-digits")[0]
        return item, (torch.randn(1, 100, 39, generator=gen), torch.tensor([100]))
    items = {i.name: i for i in task_exportables(model, "language")}
    if name == "lm":
        return items["model"], (torch.randint(10000, (1, 35), generator=gen), torch.tensor([35]))
    state = tuple(0.1 * torch.randn(2, 1, 256, generator=gen) for _ in range(2))
    return items["step"], (torch.randint(10000, (1, 1), generator=gen), *state)


def interleaved_medians(runs: dict[str, Run], repeats: int) -> dict[str, float]:
    """Median seconds of each run, called in turn (rotating order) ``repeats`` times."""
    names = list(runs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for run in runs.values():
        for _ in range(5):
            run()
    for i in range(repeats):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return {n: statistics.median(t) for n, t in times.items()}


def session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(name: str, threads: int, repeats: int, folder: Path) -> dict[str, Any]:
    torch.manual_seed(0)
    model = fsdd_model() if name == "fsdd" else language_model()
    item, inputs = case_inputs(name, model)
    eager = item.build(model).eval()

    def make_for(loop: Loop) -> Callable[[Loop], nn.Module]:
        return lambda _: item.build(replace_recurrent(copy.deepcopy(model), loop)).eval()

    ts = torch.jit.load(str(write(make_for("script"), item.example, item.signature,
                                  "torchscript", folder / f"{name}.pt")))  # fmt: skip
    feed_names = item.signature.inputs
    feed = {n: t.numpy() for n, t in zip(feed_names, inputs, strict=True)}
    runs: dict[str, Run] = {}
    with torch.inference_mode():
        reference = eager(*inputs)
    reference_out = reference[0] if isinstance(reference, tuple) else reference
    diffs: dict[str, float] = {}
    variants: tuple[tuple[str, Loop], ...] = (
        ("onnxruntime (ONNX ops)", "onnx-ops"),
        ("onnxruntime (Scan)", "scan"),
    )
    for label, loop in variants:
        path = write(make_for(loop), item.example, item.signature, "onnx", folder / f"{loop}.onnx")
        sess = session(path, threads)
        got = sess.run(None, feed)[0]
        diffs[label] = float(np.abs(got - reference_out.numpy()).max())
        runs[label] = functools.partial(sess.run, None, feed)

    def eager_run() -> object:
        with torch.inference_mode():
            return eager(*inputs)

    def ts_run() -> object:
        with torch.inference_mode():
            return ts(*inputs)

    runs = {"eager PyTorch": eager_run, "TorchScript": ts_run, **runs}
    return {"case": name, "medians": interleaved_medians(runs, repeats), "diffs": diffs}


TITLES = {
    "lm": "LSTM-256 language model (vocab 10000, emb 256, 2 x LSTM 256), batch 1, 35 tokens",
    "lm-step": "LSTM-256 language model, one-token step (generation), batch 1",
    "fsdd": "fsdd-gru model (2-layer bidirectional GRU 128, 39 MFCC), batch 1, 100 frames (1 s)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--cases", nargs="+", default=["lm", "lm-step", "fsdd"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"{args.threads} thread(s), median of {args.repeats} interleaved calls")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            result = measure(name, args.threads, args.repeats, Path(tmp))
            medians = result["medians"]
            base = medians["eager PyTorch"]
            print(f"\n{TITLES[name]}")
            print("| implementation | median ms | per second | speed-up vs eager | max abs diff |")
            print("|---|---|---|---|---|")
            for label, secs in medians.items():
                diff = result["diffs"].get(label)
                shown = "-" if diff is None else f"{diff:.1e}"
                print(f"| {label} | {1000 * secs:.3f} | {1 / secs:.0f} | {base / secs:.2f}x "
                      f"| {shown} |")  # fmt: skip


if __name__ == "__main__":
    main()
