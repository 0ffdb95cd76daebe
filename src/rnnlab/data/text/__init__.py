"""Text corpora for language modeling: reading, tokens, vocabulary, streams and BPTT windows.

The modules, in the order a corpus goes through them:

- :mod:`~rnnlab.data.text.reading`: :func:`read_text`, strict UTF-8;
- :mod:`~rnnlab.data.text.tokens`: the token levels (``word``, ``char``, ``char-spaced``),
  :func:`tokenize` and :func:`detokenize`;
- :mod:`~rnnlab.data.text.vocabulary`: :class:`Vocabulary`, built from the train split;
- :mod:`~rnnlab.data.text.corpus`: :func:`load_corpus` (a split directory or one raw file),
  :func:`load_named_corpus`, :class:`Corpus`;
- :mod:`~rnnlab.data.text.batching`: :func:`batchify` and :class:`BPTTBatches`, fixed or
  AWD-LSTM-varied windows (the layout diagrams are there);
- :mod:`~rnnlab.data.text.errors`: :class:`CorpusError`.

Example:
    >>> from rnnlab.data.text import Vocabulary, tokenize
    >>> Vocabulary.build(tokenize("a b a\\n", "word"), level="word").tokens
    ['<unk>', '<eos>', 'a', 'b']
"""

from __future__ import annotations

from rnnlab.data.text.batching import BPTTBatches, Window, batchify
from rnnlab.data.text.corpus import (
    SPLITS,
    Corpus,
    find_split_files,
    load_corpus,
    load_named_corpus,
)
from rnnlab.data.text.errors import CorpusError
from rnnlab.data.text.reading import read_text
from rnnlab.data.text.tokens import EOS, LEVELS, UNK, Level, detokenize, tokenize
from rnnlab.data.text.vocabulary import VOCAB_FORMAT, Vocabulary

__all__ = [
    "EOS",
    "LEVELS",
    "SPLITS",
    "UNK",
    "VOCAB_FORMAT",
    "BPTTBatches",
    "Corpus",
    "CorpusError",
    "Level",
    "Vocabulary",
    "Window",
    "batchify",
    "detokenize",
    "find_split_files",
    "load_corpus",
    "load_named_corpus",
    "read_text",
    "tokenize",
]
