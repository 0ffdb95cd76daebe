"""Streaming latency of the speech-sentences recipe's model, made unidirectional.

Builds the recipe's model with ``model.bidirectional = false`` (untrained weights, or a
trained unidirectional run with ``--run``), streams test recordings chunk by chunk and prints
the per-chunk latency (median, p95) and whether every streamed transcript equals the
whole-utterance greedy transcript. Latency depends on the model's size, not its weights.

    RNNLAB_DATA=../shared/data python benchmarks/speech_sentences.py --chunk-ms 160 --files 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import soundfile as sf
import torch

from rnnlab import config as cfg
from rnnlab.registry import TASKS
from rnnlab.speech.ctc import ctc_greedy_decode
from rnnlab.speech.recognize import load_recognizer
from rnnlab.speech.sentences import SpeechSentencesTask, corpus_folder
from rnnlab.speech.sentences_recognize import sentence_log_probs
from rnnlab.speech.streaming import StreamingRecognizer, latency_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunk-ms", type=float, default=160.0)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--run", type=Path, default=None, help="a unidirectional run")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.run is not None:
        recognizer = load_recognizer(args.run)
        task, model, extractor = recognizer.task, recognizer.model, recognizer.extractor
        assert isinstance(task, SpeechSentencesTask)
    else:
        overrides = ["model.bidirectional=false", "data.features.normalize=false"]
        config = cfg.load("speech-sentences", overrides)
        task = TASKS.get("speech-sentences")(config)
        assert isinstance(task, SpeechSentencesTask)
        model = task.build_model(task.spec()).eval()
        extractor = task.extractor
    files = sorted((corpus_folder(task.data_config) / "test").rglob("*.flac"))[: args.files]
    size = round(args.chunk_ms * task.feature_config.sample_rate / 1000)
    latencies: list[float] = []
    same = 0
    audio_seconds = 0.0
    start = time.perf_counter()
    for file in files:
        samples, _ = sf.read(file, dtype="float32")
        wave = torch.from_numpy(samples)
        audio_seconds += wave.numel() / task.feature_config.sample_rate
        stream = StreamingRecognizer(model, task.feature_config, task.data_config.stack, task.units)
        for begin in range(0, wave.numel(), size):
            stream.push(wave[begin : begin + size])
        result = stream.finish()
        latencies += result.latencies
        offline = ctc_greedy_decode(sentence_log_probs(task, model, extractor, wave))
        same += int(offline.tokens == result.tokens)
    wall = time.perf_counter() - start
    summary = {
        "files": len(files),
        "streamed_equals_offline": f"{same}/{len(files)}",
        "audio_seconds": round(audio_seconds, 1),
        "wall_seconds": round(wall, 1),
        **latency_summary(latencies),
        "chunk_ms": args.chunk_ms,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
