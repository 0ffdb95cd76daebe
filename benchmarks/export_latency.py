"""Exported vs eager latency: onnxruntime and TorchScript against PyTorch eager (median of repeats).

A 2-layer LSTM(64 -> 128) over (batch 8, 100 steps) with per-sequence lengths, in eval mode.

    python benchmarks/export_latency.py
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnxruntime
import torch
from torch import Tensor, nn

import rnnlab
from rnnlab.export.formats import Signature, write
from rnnlab.export.graph import Loop, replace_recurrent


class Outputs(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.layer(x, None, lengths=lengths)[0]


def median_ms(fn: Callable[[], object], repeats: int = 30) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    layer = rnnlab.LSTM(64, 128, num_layers=2, batch_first=True).eval()
    x, lengths = torch.randn(8, 100, 64), torch.randint(1, 101, (8,))
    lengths[0] = 100
    sig = Signature(("x", "lengths"), {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}})

    def make(loop: Loop) -> nn.Module:
        return Outputs(replace_recurrent(copy.deepcopy(layer), loop))

    example = (x[:3, :7].clone(), lengths[:3].clamp(max=7).clone())
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = write(make, (example), sig, "onnx", Path(folder) / "m.onnx")
        ts_path = write(make, (example), sig, "torchscript", Path(folder) / "m.pt")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2
        session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        scripted = torch.jit.load(str(ts_path))
        feed = {"x": x.numpy(), "lengths": lengths.numpy()}
        with torch.no_grad():
            eager = median_ms(lambda: layer(x, lengths=lengths))
            loop = median_ms(lambda: make("scan")(x, lengths))
            ts = median_ms(lambda: scripted(x, lengths))
        ort = median_ms(lambda: session.run(None, feed))
    print("2-layer LSTM 64->128, batch 8, 100 steps, lengths, 2 threads (median of 30)")
    print(f"eager rnnlab (fused kernel, packed): {eager:8.2f} ms  1.00x")
    print(f"eager export graph (scan, Python):   {loop:8.2f} ms  {loop / eager:.2f}x")
    print(f"TorchScript (scripted loop):         {ts:8.2f} ms  {ts / eager:.2f}x")
    print(f"onnxruntime (ONNX Scan):             {ort:8.2f} ms  {ort / eager:.2f}x")


if __name__ == "__main__":
    main()
