"""Spoken digits by voices a model never heard: synthesize them with espeak-ng, then score a run.

FSDD has six speakers; a model trained on it is tested on those same six. This benchmark
asks how it does on voices it never heard. espeak-ng (``apt-get install espeak-ng``)
speaks "zero" .. "nine" with many voices: English accents x voice variants (male,
female, Klatt-synthesized), each word at a seeded random speed (120-230 words per minute)
and pitch (25-75 of 99), resampled to 8 kHz, 16-bit WAV. Two disjoint sets:

- ``test``: accents en-us, en-gb, en-gb-scotland, en-029 x variants m1-m4, f1-f3, Annie,
  linda, klatt, klatt2 (44 voices), two takes per digit: 880 recordings.
- ``valid``: accents en-gb-x-rp, en-us-nyc, en-gb-x-gbclan x variants m5-m7, f4, f5,
  steph, belinda, klatt3 (24 voices, no accent or variant shared with test): 480
  recordings. Choose options on this set (or on FSDD's valid split), never on ``test``.

The folder is laid out for ``data.source = "folder"`` (``<out>/<word>/<voice>_<k>.wav``)
and has ``manifest.csv`` (path, label, speaker, group) for ``data.source = "manifest"``.

Usage::

    python benchmarks/unseen_voices.py synth --set test --out /tmp/unseen-test
    python benchmarks/unseen_voices.py eval RUN_DIR /tmp/unseen-test [--json out.json]
        [--warps 0.9 1.0 1.1]     # test-time VTLP averaging

``eval`` prints the accuracy overall, per voice group (male, female, klatt) and per accent.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RATE = 8000
SETS: dict[str, dict[str, Any]] = {
    "test": {
        "accents": ["en-us", "en-gb", "en-gb-scotland", "en-029"],
        "variants": {
            "male": ["m1", "m2", "m3", "m4"],
            "female": ["f1", "f2", "f3", "Annie", "linda"],
            "klatt": ["klatt", "klatt2"],
        },
        "seed": 1,
    },
    "valid": {
        "accents": ["en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan"],
        "variants": {
            "male": ["m5", "m6", "m7"],
            "female": ["f4", "f5", "steph", "belinda"],
            "klatt": ["klatt3"],
        },
        "seed": 2,
    },
}
TAKES = 2


def synthesize(which: str, out: Path) -> int:
    """Write the ``which`` set into ``out``; returns the number of recordings."""
    import numpy as np
    import soundfile as sf

    from rnnlab.data.audio import resample

    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (apt-get install -y espeak-ng)")
    spec = SETS[which]
    rng = random.Random(spec["seed"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        for accent in spec["accents"]:
            for group, variants in spec["variants"].items():
                for variant in variants:
                    voice = f"{accent}+{variant}"
                    for digit, word in enumerate(WORDS):
                        for take in range(TAKES):
                            speed, pitch = rng.randint(120, 230), rng.randint(25, 75)
                            subprocess.run(
                                ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                                 "-w", str(raw), word],
                                check=True, capture_output=True,
                            )  # fmt: skip
                            data, rate = sf.read(raw, dtype="float32")
                            wave = resample(np.asarray(data), rate, RATE)
                            name = f"{word}/{accent}_{variant}_{digit}_{take}.wav"
                            (out / word).mkdir(parents=True, exist_ok=True)
                            sf.write(out / name, wave, RATE, subtype="PCM_16")
                            rows.append((name, word, f"{accent}+{variant}", group))
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "speaker", "group"])
        writer.writerows(rows)
    return len(rows)


def evaluate(run_dir: Path, folder: Path, warps: list[float] | None = None) -> dict[str, object]:
    """Accuracy of the run on the set in ``folder`` (overall, per group, per accent);
    ``warps``: test-time VTLP averaging (:meth:`rnnlab.speech.Recognizer.recognize_file`)."""
    from rnnlab.speech import load_recognizer

    recognizer = load_recognizer(run_dir)
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    with open(folder / "manifest.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        result = recognizer.recognize_file(folder / row["path"], warps=warps)
        right = int(result.get("word") == row["label"])
        accent = row["speaker"].split("+")[0]
        for key in ("all", f"group {row['group']}", f"accent {accent}"):
            hits[key][0] += right
            hits[key][1] += 1
    return {key: {"accuracy": h / n, "count": n} for key, (h, n) in sorted(hits.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth", help="synthesize a set")
    synth.add_argument("--set", choices=sorted(SETS), default="test")
    synth.add_argument("--out", type=Path, required=True)
    ev = sub.add_parser("eval", help="score a speech-digits run on a set")
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("folder", type=Path)
    ev.add_argument("--json", type=Path, default=None)
    ev.add_argument(
        "--warps", type=float, nargs="+", default=None,
        help="average the posteriors over these VTLP factors, e.g. 0.9 1.0 1.1",
    )  # fmt: skip
    args = parser.parse_args()
    if args.command == "synth":
        count = synthesize(args.set, args.out)
        print(f"{count} recordings in {args.out}")
        return
    scores = evaluate(args.run_dir, args.folder, args.warps)
    for key, value in scores.items():
        assert isinstance(value, dict)
        print(f"{key:24s} {value['accuracy']:.2%}  ({value['count']} recordings)")
    if args.json is not None:
        args.json.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
