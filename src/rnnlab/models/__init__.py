"""Models: ``SequenceModel(encoder, recurrent, head)``, the cell registry and the heads."""

from rnnlab.models.cells import CELLS, cell_options
from rnnlab.models.heads import ClassificationHead, RegressionHead, pool
from rnnlab.models.sequence import (
    SequenceModel,
    build_encoder,
    build_recurrent,
    build_sequence_model,
    init_uniform_,
    recurrent_output_size,
)

__all__ = [
    "CELLS",
    "ClassificationHead",
    "RegressionHead",
    "SequenceModel",
    "build_encoder",
    "build_recurrent",
    "build_sequence_model",
    "cell_options",
    "init_uniform_",
    "pool",
    "recurrent_output_size",
]
