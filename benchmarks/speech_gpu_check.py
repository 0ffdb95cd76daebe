"""On a CUDA machine: speech features, augmentation and models on the GPU against the CPU.

Needs only torch and numpy (no audio files: the utterances are generated, with FSDD-like
lengths). Checks that the GPU gives the CPU's numbers for the feature pipeline (two
conventions), the classifier and the CTC model (outputs, CTC loss and gradients), that
augmentation and decoding accept GPU tensors, and prints feature throughput in seconds of
audio per second, batched, on both devices. Exits non-zero when a difference exceeds the
tolerance. Usage: python benchmarks/speech_gpu_check.py [--device cuda]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from rnnlab import GRU, LSTM
from rnnlab.data.audio import FeatureConfig, FeatureExtractor, add_noise, spec_augment
from rnnlab.models.speech import CTCModel, SpeechClassifier
from rnnlab.speech import decode_batch

TOL = 1e-3  # float32, TF32 off: FFT and matmul sum in different orders on the two devices
RATE = 8000
CONFIGS = {
    "mfcc+deltas+cmvn (htk)": FeatureConfig(sample_rate=RATE, deltas=2),
    "logmel dB (slaney)": FeatureConfig(
        sample_rate=RATE,
        kind="logmel",
        window="hann",
        n_fft=256,
        mel_scale="slaney",
        mel_norm="slaney",
        log="db",
        pre_emphasis=None,
        normalize=False,
    ),
}


def utterances(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded batch of chirps plus noise, 0.15-2.3 s long (mean about 0.45 s, like FSDD)."""
    gen = torch.Generator().manual_seed(seed)
    seconds = (0.15 + torch.distributions.Exponential(3.3).sample((count,))).clamp(max=2.3)
    lengths = (seconds * RATE).long()
    batch = torch.zeros(count, int(lengths.max()))
    for row, n in enumerate(lengths.tolist()):
        t = torch.arange(n) / RATE
        f0 = 200 + 600 * float(torch.rand(1, generator=gen))
        batch[row, :n] = 0.4 * torch.sin(2 * math.pi * f0 * t * (1 + t)) + 0.02 * torch.randn(
            n, generator=gen
        )
    return batch, lengths


def report(name: str, diff: float, failures: list[str]) -> None:
    ok = diff <= TOL
    print(f"{'ok  ' if ok else 'FAIL'} {name:<44} max |gpu - cpu| = {diff:.2e}")
    if not ok:
        failures.append(name)


def throughput(config: FeatureConfig, device: str, batch: int = 256) -> float:
    waves, lengths = utterances(3000, seed=1)
    order = lengths.argsort()
    chunks = []
    for start in range(0, 3000, batch):
        idx = order[start : start + batch]
        n = int(lengths[idx].max())
        chunks.append((waves[idx, :n].to(device), lengths[idx].to(device)))
    extractor = FeatureExtractor(config).to(device)

    def run() -> None:
        with torch.no_grad():
            for x, n in chunks:
                extractor(x, n)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    run()
    best = min(_timed(run) for _ in range(3))
    return float(lengths.sum()) / RATE / best


def _timed(run: object) -> float:
    start = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = args.device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if device.startswith("cuda"):
        print(torch.__version__, torch.cuda.get_device_name(0))
    failures: list[str] = []
    waves, lengths = utterances(32, seed=0)
    for name, config in CONFIGS.items():
        cpu, cpu_frames = FeatureExtractor(config)(waves, lengths)
        gpu, gpu_frames = FeatureExtractor(config).to(device)(waves.to(device), lengths.to(device))
        assert gpu.device.type == torch.device(device).type
        report(f"features {name}", float((gpu.cpu() - cpu).abs().max()), failures)
        if not torch.equal(gpu_frames.cpu(), cpu_frames):
            failures.append(f"frame counts {name}")
    feats, frames = FeatureExtractor(CONFIGS["mfcc+deltas+cmvn (htk)"])(waves, lengths)
    gen = torch.Generator().manual_seed(0)
    masked = spec_augment(feats.to(device), training=True, lengths=frames, generator=gen)
    noisy = add_noise(waves.to(device), 10.0, training=True, lengths=lengths, generator=gen)
    print(f"ok   augmentation on {masked.device} and {noisy.device}")

    torch.manual_seed(0)
    bigru = lambda: GRU(39, 32, batch_first=True, bidirectional=True)  # noqa: E731
    for name, make in [
        ("classifier GRU-bi mean", lambda: SpeechClassifier(bigru(), 10)),
        (
            "classifier LSTM last",
            lambda: SpeechClassifier(LSTM(39, 32, batch_first=True), 10, "last"),
        ),
    ]:
        cpu_model = make()
        gpu_model = make().to(device)
        gpu_model.load_state_dict(cpu_model.state_dict())
        out_cpu = cpu_model(feats, frames)
        out_gpu = gpu_model(feats.to(device), frames)
        report(name, float((out_gpu.detach().cpu() - out_cpu.detach()).abs().max()), failures)
    targets = torch.randint(1, 11, (32, 3))
    ctc_cpu = CTCModel(GRU(39, 32, batch_first=True, bidirectional=True), num_tokens=10)
    ctc_gpu = CTCModel(GRU(39, 32, batch_first=True, bidirectional=True), num_tokens=10).to(device)
    ctc_gpu.load_state_dict(ctc_cpu.state_dict())
    losses = []
    for model, dev in [(ctc_cpu, "cpu"), (ctc_gpu, device)]:
        log_probs = model(feats.to(dev), frames)
        loss = model.loss(log_probs, frames.to(dev), targets.to(dev), torch.full((32,), 3).to(dev))
        loss.backward()
        losses.append((log_probs, loss))
    report(
        "ctc log-probs",
        float((losses[1][0].detach().cpu() - losses[0][0].detach()).abs().max()),
        failures,
    )
    report("ctc loss", abs(float(losses[1][1].detach()) - float(losses[0][1].detach())), failures)
    grad_diff = max(
        float((a.grad.cpu() - b.grad).abs().max())  # type: ignore[union-attr]
        for a, b in zip(ctc_gpu.parameters(), ctc_cpu.parameters(), strict=True)
    )
    report("ctc gradients", grad_diff, failures)
    hyps = decode_batch(losses[1][0], frames, beam_width=4)
    print(f"ok   beam decoding of GPU log-probs: {len(hyps)} hypotheses")

    print(
        "\nfeature throughput (seconds of audio per second, batches of 256, "
        f"{torch.get_num_threads()} CPU threads)"
    )
    for name, config in CONFIGS.items():
        cpu_speed = throughput(config, "cpu")
        line = f"  {name:<28} cpu {cpu_speed:>9.0f}"
        if device != "cpu":
            gpu_speed = throughput(config, device)
            line += f"   {device} {gpu_speed:>10.0f}   ratio {gpu_speed / cpu_speed:.1f}x"
        print(line)
    if failures:
        print("FAILED:", ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
