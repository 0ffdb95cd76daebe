"""Greedy against LM-beam decoding of a trained speech-sentences run, with and without the
lexicon, on the valid split (and, with ``--test``, the test split at the weights chosen on
valid).

For each decoder setting the script prints WER and CER; the LM weights (alpha, beta) of
each beam row are the best of the run's ``data.lm.alphas`` x ``data.lm.betas`` grid on the
valid split, as the task's own test evaluation chooses them. The test split is decoded
once per row, at those weights, never tuned on.

    RNNLAB_DATA=../shared/data python benchmarks/speech_decoding.py RUN_DIR --test
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from rnnlab.speech.ctc import decode_batch
from rnnlab.speech.lm_beam import LMDecoder, tune_lm_weights
from rnnlab.speech.metrics import character_error_rate, word_error_rate
from rnnlab.speech.recognize import load_recognizer
from rnnlab.speech.sentences import SpeechSentencesTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path)
    parser.add_argument("--test", action="store_true", help="also decode the test split")
    parser.add_argument("--beam", type=int, nargs="+", default=None, help="beam widths")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recognizer = load_recognizer(args.run)
    task, model = recognizer.task, recognizer.model
    assert isinstance(task, SpeechSentencesTask)
    data = task.build_data()
    lm, units = task.lm, task.units
    settings = task.data_config.lm
    splits = {"valid": data.valid} | ({"test": data.test} if args.test else {})
    outputs = {name: task._outputs(model, loader)[1:] for name, loader in splits.items()}
    print(f"run {args.run}: " + ", ".join(f"{n} {len(r)}" for n, (r, _) in outputs.items()))
    print("| decoder | alpha | beta | " + " | ".join(f"{n} WER | {n} CER" for n in outputs) + " |")
    print("|---|---|---|" + "---|---|" * len(outputs))
    cells = []
    for refs, outs in outputs.values():
        hyps = [units.decode(h.tokens) for h in (decode_batch(o.unsqueeze(0))[0] for o in outs)]
        cells += [f"{word_error_rate(refs, hyps):.4f}", f"{character_error_rate(refs, hyps):.4f}"]
    print("| greedy | - | - | " + " | ".join(cells) + " |")
    for width in args.beam or [settings.beam_width]:
        for lexicon in (False, True):
            began = time.perf_counter()
            valid_refs, valid_outs = outputs["valid"]
            alpha, beta = tune_lm_weights(
                valid_outs,
                valid_refs,
                units,
                lm,
                settings.alphas,
                settings.betas,
                beam_width=width,
                prune=settings.prune,
                lexicon=lexicon,
            )
            decoder = LMDecoder(units, lm, alpha, beta, width, settings.prune, lexicon=lexicon)
            cells = []
            for refs, outs in outputs.values():
                hyps = [decoder.decode(o).text for o in outs]
                cells += [
                    f"{word_error_rate(refs, hyps):.4f}",
                    f"{character_error_rate(refs, hyps):.4f}",
                ]
            name = f"beam {width} + LM" + (" + lexicon" if lexicon else "")
            seconds = time.perf_counter() - began
            row = f"| {name} ({seconds:.0f} s) | {alpha:g} | {beta:g} | "
            print(row + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
