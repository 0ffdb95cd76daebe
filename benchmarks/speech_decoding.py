"""Greedy against LM-beam decoding of a trained speech-sentences run, with and without the
lexicon, on the valid split (and, with ``--test``, the test split at the weights chosen on
valid).

For each decoder setting the script prints WER and CER; the LM weights (alpha, beta) of
each beam row are the best of the run's ``data.lm.alphas`` x ``data.lm.betas`` grid on the
valid split, as the task's own test evaluation chooses them. The test split is decoded
once per row, at those weights, never tuned on.

    RNNLAB_DATA=../shared/data python benchmarks/speech_decoding.py RUN_DIR --test
    ... speech_decoding.py RUN_DIR --beam 16 32 --lexicon-only --alphas 0.3 0.5 0.8
    ... speech_decoding.py RUN_DIR --lm-order 4      # the same LM text, another order
"""

from __future__ import annotations

import argparse
import difflib
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from rnnlab.speech.ctc import decode_batch
from rnnlab.speech.lm_beam import LMDecoder, tune_lm_weights
from rnnlab.speech.metrics import character_error_rate, word_error_rate
from rnnlab.speech.recognize import load_recognizer
from rnnlab.speech.sentences import SpeechSentencesTask, corpus_folder


def heard_word_accuracy(
    refs: Sequence[str], hyps: Sequence[str], heard: set[str]
) -> tuple[float, float, float]:
    """Share of reference words never in the training transcripts, and word accuracy (a
    reference word counts as right when it is in a matching block of the word alignment) on
    the heard and on the unheard words."""
    counts = {True: [0, 0], False: [0, 0]}
    for ref, hyp in zip(refs, hyps, strict=True):
        words = ref.split()
        matcher = difflib.SequenceMatcher(a=words, b=hyp.split(), autojunk=False)
        right = {a + k for a, _, n in matcher.get_matching_blocks() for k in range(n)}
        for index, word in enumerate(words):
            tally = counts[word in heard]
            tally[0] += 1
            tally[1] += index in right
    total = counts[True][0] + counts[False][0]
    rate = lambda c: c[1] / max(c[0], 1)  # noqa: E731
    return counts[False][0] / max(total, 1), rate(counts[True]), rate(counts[False])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path)
    parser.add_argument("--test", action="store_true", help="also decode the test split")
    parser.add_argument("--beam", type=int, nargs="+", default=None, help="beam widths")
    parser.add_argument("--alphas", type=float, nargs="+", default=None, help="LM weight grid")
    parser.add_argument("--betas", type=float, nargs="+", default=None, help="word bonus grid")
    parser.add_argument(
        "--lexicon-only", action="store_true", help="skip the open-vocabulary beam rows"
    )
    parser.add_argument(
        "--heard", action="store_true", help="word accuracy on words heard / not heard in train"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--lm-order", type=int, default=None,
        help="decode with an LM of this order rebuilt from the run's data.lm text",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recognizer = load_recognizer(args.run)
    task, model = recognizer.task, recognizer.model
    assert isinstance(task, SpeechSentencesTask)
    data = task.build_data()
    settings = task.data_config.lm
    if args.lm_order is not None:
        settings.order = args.lm_order  # validated on assignment
        task.lm = task._language_model(corpus_folder(task.data_config))
    lm, units = task.lm, task.units
    wanted = {"valid": data.valid} | ({"test": data.test} if args.test else {})
    splits = {name: loader for name, loader in wanted.items() if loader is not None}
    outputs = {name: task._outputs(model, loader)[1:] for name, loader in splits.items()}
    heard = {
        w for _, text in task._split(corpus_folder(task.data_config), "train") for w in text.split()
    }
    report: list[str] = []

    def words(name: str, hyps_by_split: list[list[str]]) -> None:
        if args.heard:
            for (split, (refs, _)), hyps in zip(outputs.items(), hyps_by_split, strict=True):
                unheard, right_heard, right_unheard = heard_word_accuracy(refs, hyps, heard)
                report.append(
                    f"{name}, {split}: {unheard:.1%} of the words not in train; word accuracy "
                    f"{right_heard:.1%} on heard words, {right_unheard:.1%} on the others"
                )

    print(f"run {args.run}: " + ", ".join(f"{n} {len(r)}" for n, (r, _) in outputs.items()))
    print("| decoder | alpha | beta | " + " | ".join(f"{n} WER | {n} CER" for n in outputs) + " |")
    print("|---|---|---|" + "---|---|" * len(outputs))
    cells, all_hyps = [], []
    for refs, outs in outputs.values():
        hyps = [units.decode(h.tokens) for h in (decode_batch(o.unsqueeze(0))[0] for o in outs)]
        cells += [f"{word_error_rate(refs, hyps):.4f}", f"{character_error_rate(refs, hyps):.4f}"]
        all_hyps.append(hyps)
    print("| greedy | - | - | " + " | ".join(cells) + " |")
    words("greedy", all_hyps)
    for width in args.beam or [settings.beam_width]:
        for lexicon in (True,) if args.lexicon_only else (False, True):
            began = time.perf_counter()
            valid_refs, valid_outs = outputs["valid"]
            alpha, beta = tune_lm_weights(
                valid_outs,
                valid_refs,
                units,
                lm,
                args.alphas or settings.alphas,
                args.betas or settings.betas,
                beam_width=width,
                prune=settings.prune,
                lexicon=lexicon,
            )
            decoder = LMDecoder(units, lm, alpha, beta, width, settings.prune, lexicon=lexicon)
            cells, all_hyps = [], []
            for refs, outs in outputs.values():
                hyps = [decoder.decode(o).text for o in outs]
                all_hyps.append(hyps)
                cells += [
                    f"{word_error_rate(refs, hyps):.4f}",
                    f"{character_error_rate(refs, hyps):.4f}",
                ]
            name = f"beam {width} + LM" + (" + lexicon" if lexicon else "")
            seconds = time.perf_counter() - began
            row = f"| {name} ({seconds:.0f} s) | {alpha:g} | {beta:g} | "
            print(row + " | ".join(cells) + " |")
            words(name, all_hyps)
    print("\n".join(report))


if __name__ == "__main__":
    main()
