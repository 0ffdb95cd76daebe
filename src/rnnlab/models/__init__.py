"""Models every domain shares: ``SequenceModel(encoder, recurrent, head)``, the heads, and
the ``[model]``-to-layer translation (:mod:`rnnlab.models.stack`)."""

from rnnlab.models.heads import ClassificationHead, RegressionHead, pool
from rnnlab.models.sequence import (
    SequenceModel,
    build_encoder,
    build_sequence_model,
    init_uniform_,
    recurrent_output_size,
)
from rnnlab.models.stack import build_recurrent, layer_keywords

__all__ = [
    "ClassificationHead",
    "RegressionHead",
    "SequenceModel",
    "build_encoder",
    "build_recurrent",
    "build_sequence_model",
    "init_uniform_",
    "layer_keywords",
    "pool",
    "recurrent_output_size",
]
