"""MFCC extraction speed: rnnlab's torch features against librosa, on the FSDD recordings.

Both compute the same MFCCs (8 kHz, 25 ms Hann windows every 10 ms, n_fft 256, 40 Slaney mel
filters, 13 cepstra, dB log; librosa additionally clips at ``top_db=80``). The recordings are
read into memory first, so only feature extraction is timed. Three rnnlab figures:

- ``per-utterance``: one call per recording, as a data loader would do;
- ``batched``: one zero-padded batch of ``--batch`` recordings of similar length per call
  (with ``lengths``);
- the same batched run on ``--device`` when it is not ``cpu``.

Throughput is seconds of audio per second of wall time (higher is better); the ratio is
rnnlab over librosa. Each figure is the best of ``--repeats`` runs after one warm-up.

Run::

    python benchmarks/feature_speed.py                       # finds shared/data/fsdd
    python benchmarks/feature_speed.py --data DIR --threads 1 --device cuda
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from rnnlab.data.audio import FeatureConfig, FeatureExtractor, load_audio
from rnnlab.data.fsdd import list_recordings
from timing import best_seconds

CONFIG = FeatureConfig(
    sample_rate=8000,
    kind="mfcc",
    window_ms=25.0,
    hop_ms=10.0,
    n_fft=256,
    window="hann",
    n_mels=40,
    n_mfcc=13,
    mel_scale="slaney",
    mel_norm="slaney",
    log="db",
    pre_emphasis=None,
    normalize=False,
)


def find_data() -> Path:
    """The shared FSDD folder inside or beside the repository."""
    repo = Path(__file__).resolve().parents[1]
    for candidate in (repo / "shared" / "data" / "fsdd", repo.parent / "shared" / "data" / "fsdd"):
        if (candidate / "recordings").is_dir():
            return candidate
    raise SystemExit("FSDD recordings not found; pass --data DIR")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="FSDD folder")
    parser.add_argument("--limit", type=int, default=3000, help="recordings used")
    parser.add_argument("--batch", type=int, default=256, help="recordings per batched call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="also time batched rnnlab on it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import librosa

    recordings = list_recordings(args.data or find_data())[: args.limit]
    waves = [load_audio(r.path, 8000).samples for r in recordings]
    arrays = [w.numpy() for w in waves]
    total_seconds = sum(w.numel() for w in waves) / 8000
    extractor = FeatureExtractor(CONFIG)

    def ours_each() -> None:
        with torch.no_grad():
            for wave in waves:
                extractor(wave)

    def batches(device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        by_length = sorted(waves, key=lambda w: w.numel())  # little padding per batch
        for start in range(0, len(by_length), args.batch):
            chunk = by_length[start : start + args.batch]
            lengths = torch.tensor([w.numel() for w in chunk])
            padded = torch.zeros(len(chunk), int(lengths.max()))
            for row, wave in enumerate(chunk):
                padded[row, : wave.numel()] = wave
            out.append((padded.to(device), lengths.to(device)))
        return out

    def ours_batched(device: str) -> Callable[[], None]:
        model = FeatureExtractor(CONFIG).to(device)
        data = batches(device)

        def run() -> None:
            with torch.no_grad():
                for padded, lengths in data:
                    model(padded, lengths)
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        return run

    def reference() -> None:
        for y in arrays:
            librosa.feature.mfcc(
                y=y, sr=8000, n_mfcc=13, n_fft=256, hop_length=80, win_length=200,
                window="hann", n_mels=40, htk=False, pad_mode="constant",
            )  # fmt: skip

    results = {
        "librosa per-utterance": best_seconds(reference, args.repeats),
        "rnnlab per-utterance (cpu)": best_seconds(ours_each, args.repeats),
        "rnnlab batched (cpu)": best_seconds(ours_batched("cpu"), args.repeats),
    }
    if args.device != "cpu":
        results[f"rnnlab batched ({args.device})"] = best_seconds(
            ours_batched(args.device), args.repeats
        )
    base = total_seconds / results["librosa per-utterance"]
    print(f"{len(waves)} recordings, {total_seconds:.1f} s of audio, torch threads {args.threads}")
    print(f"{'method':<30} {'audio s / s':>12} {'vs librosa':>11}")
    for name, seconds in results.items():
        speed = total_seconds / seconds
        print(f"{name:<30} {speed:>12.0f} {speed / base:>10.2f}x")
    check = extractor(waves[0])[0].numpy()
    ref = librosa.feature.mfcc(
        S=librosa.power_to_db(
            librosa.feature.melspectrogram(
                y=arrays[0],
                sr=8000,
                n_fft=256,
                hop_length=80,
                win_length=200,
                window="hann",
                n_mels=40,
                pad_mode="constant",
            ),
            top_db=None,
        ),
        n_mfcc=13,
    ).T
    print(f"max |rnnlab - librosa| on {recordings[0].path.name}: {np.abs(check - ref).max():.2e}")


if __name__ == "__main__":
    main()
