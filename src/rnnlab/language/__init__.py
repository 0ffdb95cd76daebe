"""The language wing: next-token language modeling with stateful truncated BPTT.

=====================================  ===================================================
module                                 what it holds
=====================================  ===================================================
:mod:`rnnlab.language.task`            the registered task ``language`` and its ``[data]``
:mod:`rnnlab.language.windows`         BPTT windows of a split as training/eval loaders
:mod:`rnnlab.language.model`           :class:`LanguageModel` (embedding, stack, decoder)
:mod:`rnnlab.language.generation`      sampling tokens from a model
:mod:`rnnlab.language.run`             loading a trained run and streaming its text
=====================================  ===================================================
"""

from rnnlab.language.generation import generate, generate_text, sample
from rnnlab.language.model import LanguageModel, LMScore, detach_state, evaluate
from rnnlab.language.run import LanguageRun, generate_from_run, load_run, stream_text
from rnnlab.language.task import LanguageData, LanguageTask

__all__ = [
    "LMScore",
    "LanguageData",
    "LanguageModel",
    "LanguageRun",
    "LanguageTask",
    "detach_state",
    "evaluate",
    "generate",
    "generate_from_run",
    "generate_text",
    "load_run",
    "sample",
    "stream_text",
]
