"""Speech feature throughput on the CPU and a device, in seconds of audio per second.

Needs no audio files: 3,000 generated utterances (chirps plus noise) with FSDD-like lengths
(0.15-2.3 s, mean about 0.45 s), batched by length, through the two feature conventions the
GPU tests check (``tests/gpu/test_speech_cuda.py``). Best of three passes.

Usage: python benchmarks/speech_feature_throughput.py [--device cuda] [--batch 256]
"""

from __future__ import annotations

import argparse
import math

import torch

from rnnlab.data.audio import FeatureConfig, FeatureExtractor
from timing import best_seconds

RATE = 8000
CONFIGS = {
    "mfcc+deltas+cmvn (htk)": FeatureConfig(sample_rate=RATE, deltas=2),
    "logmel dB (slaney)": FeatureConfig(
        sample_rate=RATE, kind="logmel", window="hann", n_fft=256, mel_scale="slaney",
        mel_norm="slaney", log="db", pre_emphasis=None, normalize=False,
    ),
}  # fmt: skip


def utterances(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded batch of chirps plus noise, 0.15-2.3 s long (mean about 0.45 s, like FSDD)."""
    gen = torch.Generator().manual_seed(seed)
    seconds = (0.15 + torch.distributions.Exponential(3.3).sample((count,))).clamp(max=2.3)
    lengths = (seconds * RATE).long()
    batch = torch.zeros(count, int(lengths.max()))
    for row, n in enumerate(lengths.tolist()):
        t = torch.arange(n) / RATE
        f0 = 200 + 600 * float(torch.rand(1, generator=gen))
        chirp = 0.4 * torch.sin(2 * math.pi * f0 * t * (1 + t))
        batch[row, :n] = chirp + 0.02 * torch.randn(n, generator=gen)
    return batch, lengths


def throughput(config: FeatureConfig, device: str, batch: int) -> float:
    """Seconds of audio per second of feature extraction, batched by length."""
    waves, lengths = utterances(3000, seed=1)
    order = lengths.argsort()
    chunks = []
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        n = int(lengths[idx].max())
        chunks.append((waves[idx, :n].to(device), lengths[idx].to(device)))
    extractor = FeatureExtractor(config).to(device)

    def run() -> None:
        with torch.no_grad():
            for x, n in chunks:
                extractor(x, n)

    return float(lengths.sum()) / RATE / best_seconds(run, 3, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    print(
        f"feature throughput (seconds of audio per second, batches of {args.batch}, "
        f"{torch.get_num_threads()} CPU threads)"
    )
    for name, config in CONFIGS.items():
        cpu_speed = throughput(config, "cpu", args.batch)
        line = f"  {name:<28} cpu {cpu_speed:>9.0f}"
        if args.device != "cpu":
            speed = throughput(config, args.device, args.batch)
            line += f"   {args.device} {speed:>10.0f}   ratio {speed / cpu_speed:.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
