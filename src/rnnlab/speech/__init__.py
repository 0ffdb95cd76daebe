"""Speech recognition helpers: CTC decoding and alignment (ctc), WER and CER (metrics)."""

from rnnlab.speech.ctc import (
    Hypothesis,
    TokenSpan,
    ctc_align,
    ctc_beam_search,
    ctc_greedy_decode,
    decode_batch,
)
from rnnlab.speech.metrics import (
    ErrorCounts,
    character_error_rate,
    error_counts,
    word_error_rate,
)

__all__ = [
    "ErrorCounts",
    "Hypothesis",
    "TokenSpan",
    "character_error_rate",
    "ctc_align",
    "ctc_beam_search",
    "ctc_greedy_decode",
    "decode_batch",
    "error_counts",
    "word_error_rate",
]
