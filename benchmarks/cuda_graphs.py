"""On a CUDA machine: a layer's training step with and without CUDA graphs, against cuDNN.

rnnlab's fused BPTT runs its time loops in Python on GPUs: a few small kernels per step, so
the GPU waits on launches. rnnlab replays those loops as CUDA graphs
(``rnnlab.nn.cuda_graphs``); a user may also capture the whole step (forward, loss,
backward) in one ``torch.cuda.CUDAGraph``. This measures, per cell and option, median of
``--repeats`` timings with CUDA events:

- ``loops eager``: rnnlab with ``RNNLAB_CUDA_GRAPHS=0`` (every launch from Python);
- ``rnnlab``: rnnlab as it runs by default (time loops replayed as graphs);
- ``whole graph``: the whole step captured by the user;
- ``cuDNN``: torch.nn's plain layer (eager);

and checks that the whole-step replay computes the eager step's gradients (same seed,
hence the same masks).

Usage: python benchmarks/cuda_graphs.py [--hidden 256] [--batch 32] [--steps 100]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import torch
from torch import Tensor, nn

from layer_speed import CELLS, OPTIONS
from timing import cuda_event_ms


def _step(layer: nn.Module, x: Tensor) -> Callable[[], None]:
    def run() -> None:
        out, _ = layer(x)
        out.sum().backward()

    return run


def _graphed(layer: nn.Module, x: Tensor) -> Callable[[], None]:
    """The step captured once; each call replays it (gradients accumulate, as eager's do)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm up outside the graph (allocator, cuBLAS handles)
        for _ in range(3):
            _step(layer, x)()
    torch.cuda.current_stream().wait_stream(side)
    layer.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        _step(layer, x)()
    return graph.replay


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--batch", type=int, nargs="+", default=[32])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cells", nargs="+", default=list(CELLS))
    parser.add_argument("--options", nargs="+", default=list(OPTIONS))
    args = parser.parse_args()
    device = torch.device("cuda")
    print(torch.__version__, torch.cuda.get_device_name(0))
    print(
        f"{'cell':5} {'H':>5} {'B':>4} {'option':18} {'eager ms':>9} {'rnnlab':>9} "
        f"{'whole ms':>9} {'cuDNN ms':>9} {'eager/cuDNN':>11} {'rnnlab/cuDNN':>12} "
        f"{'whole/cuDNN':>11} grads"
    )
    for cell, hidden, batch in (
        (c, h, b) for c in args.cells for h in args.hidden for b in args.batch
    ):
        ours_cls, torch_cls, _, family = CELLS[cell]
        x = torch.randn(args.steps, batch, hidden, device=device)
        cudnn = torch_cls(hidden, hidden, **family).to(device)
        cudnn_ms = cuda_event_ms(_step(cudnn, x), args.repeats)
        for option in args.options:
            torch.manual_seed(0)
            layer = ours_cls(hidden, hidden, **family, **OPTIONS[option]).to(device)
            os.environ["RNNLAB_CUDA_GRAPHS"] = "0"
            eager_ms = cuda_event_ms(_step(layer, x), args.repeats)
            os.environ.pop("RNNLAB_CUDA_GRAPHS")
            ours_ms = cuda_event_ms(_step(layer, x), args.repeats)
            try:
                layer.zero_grad(set_to_none=True)
                torch.manual_seed(1)
                _step(layer, x)()
                expected = [p.grad.clone() for p in layer.parameters() if p.grad is not None]
                torch.manual_seed(1)  # the graph's first replay draws what eager drew
                replay = _graphed(layer, x)
                for p in layer.parameters():
                    if p.grad is not None:
                        p.grad.zero_()
                torch.manual_seed(1)
                replay()
                torch.cuda.synchronize()
                got = [p.grad for p in layer.parameters() if p.grad is not None]
                same = len(got) == len(expected) and all(
                    torch.allclose(a, b, rtol=1e-4, atol=1e-5)
                    for a, b in zip(got, expected, strict=True)
                )
                graph_ms = cuda_event_ms(replay, args.repeats)
                graph_text = f"{graph_ms:9.2f}"
                ratio = f"{graph_ms / cudnn_ms:10.2f}x"
                verdict = "same" if same else "DIFFER"
            except Exception as error:  # report and go on: this is a probe
                graph_text, ratio = f"{'-':>9}", f"{'-':>11}"
                verdict = f"capture failed: {type(error).__name__}: {str(error)[:120]}"
            print(
                f"{cell:5} {hidden:>5} {batch:>4} {option:18} {eager_ms:9.2f} {ours_ms:9.2f} "
                f"{graph_text} {cudnn_ms:9.2f} {eager_ms / cudnn_ms:10.2f}x "
                f"{ours_ms / cudnn_ms:11.2f}x {ratio} {verdict}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
