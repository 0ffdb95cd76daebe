"""The speech wing: spoken-digit classification and connected-digit recognition with CTC.

One module per concept:

=================  ==========================================================================
``settings``       the ``[data]`` sections (features, augmentation, the tone corpus)
``vocabulary``     :class:`CTCVocabulary`, the CTC token set (blank, words or characters)
``recordings``     FSDD recordings or generated tones, per split
``own_audio``      your own labelled recordings: a folder or a manifest, split, class balance
``batching``       utterances in memory, padded and augmented batches
``task``           :class:`SpeechTask`, what both tasks share
``digits``         the ``speech-digits`` task and the confusion matrix of a finished run
``ctc_task``       the ``speech-ctc`` task
``model``          :class:`SpeechClassifier`, :class:`CTCModel`, :class:`CTCHead`
``ctc``            CTC decoding (greedy, prefix beam search) and alignment
``metrics``        word and character error rates
``confusion``      confusion-matrix plot and files
``screening``      too short or silent recordings, before recognition (-60 dBFS peak)
``recognize``      :func:`recognize` and :func:`load_recognizer` (``rnnlab recognize``)
``transcripts``    transcribed audio: LibriSpeech layout, Common Voice TSV, manifest
``units``          text normalization, :class:`TextUnits` (characters or word pieces)
``lm``             :class:`NGramLM`, Kneser-Ney n-gram word LM, ARPA in and out
``lm_beam``        :class:`LMDecoder`, CTC prefix beam search with the word LM
``sentences*``     the ``speech-sentences`` task, its ``[data]``, features, transcribing
``streaming``      :class:`StreamingRecognizer`, chunk-by-chunk recognition
=================  ==========================================================================
"""

from rnnlab.speech.batching import Utterance, UtteranceBatches
from rnnlab.speech.confusion import plot_confusion_matrix
from rnnlab.speech.ctc import (
    Hypothesis,
    TokenSpan,
    ctc_align,
    ctc_beam_search,
    ctc_greedy_decode,
    decode_batch,
)
from rnnlab.speech.ctc_task import SpeechCTCTask
from rnnlab.speech.digits import SpeechDigitsTask, write_confusion_matrix
from rnnlab.speech.lm import NGramLM
from rnnlab.speech.lm_beam import LMDecoder
from rnnlab.speech.metrics import (
    ErrorCounts,
    character_error_rate,
    error_counts,
    word_error_rate,
)
from rnnlab.speech.model import CTCHead, CTCModel, SpeechClassifier
from rnnlab.speech.own_audio import BalanceReport
from rnnlab.speech.recognize import Recognizer, load_recognizer, recognize, word_times
from rnnlab.speech.recordings import tone_word
from rnnlab.speech.screening import SILENCE_PEAK_DBFS
from rnnlab.speech.sentences import SpeechSentencesTask
from rnnlab.speech.sentences_settings import SpeechSentencesData
from rnnlab.speech.settings import (
    AugmentSettings,
    FeatureSettings,
    SpeechCTCData,
    SpeechDigitsData,
    ToneSettings,
)
from rnnlab.speech.streaming import StreamingRecognizer
from rnnlab.speech.task import SpeechTask
from rnnlab.speech.transcripts import read_transcripts
from rnnlab.speech.units import TextUnits
from rnnlab.speech.vocabulary import CTCVocabulary

__all__ = [
    "SILENCE_PEAK_DBFS",
    "AugmentSettings",
    "BalanceReport",
    "CTCHead",
    "CTCModel",
    "CTCVocabulary",
    "ErrorCounts",
    "FeatureSettings",
    "Hypothesis",
    "LMDecoder",
    "NGramLM",
    "Recognizer",
    "SpeechCTCData",
    "SpeechCTCTask",
    "SpeechClassifier",
    "SpeechDigitsData",
    "SpeechDigitsTask",
    "SpeechSentencesData",
    "SpeechSentencesTask",
    "SpeechTask",
    "StreamingRecognizer",
    "TextUnits",
    "TokenSpan",
    "ToneSettings",
    "Utterance",
    "UtteranceBatches",
    "character_error_rate",
    "ctc_align",
    "ctc_beam_search",
    "ctc_greedy_decode",
    "decode_batch",
    "error_counts",
    "load_recognizer",
    "plot_confusion_matrix",
    "read_transcripts",
    "recognize",
    "tone_word",
    "word_error_rate",
    "word_times",
    "write_confusion_matrix",
]
