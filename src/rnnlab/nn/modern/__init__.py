"""The modern recurrent family: layers that train in parallel over time, or nearly.

- :class:`MinGRU`, :class:`MinLSTM` (Feng et al. 2024): gates from the input only; training is
  one input projection plus an element-wise linear scan (:mod:`rnnlab.nn.modern.scan`).
- :class:`IndRNN` (Li et al. 2018): element-wise recurrence ``act(W x + u * h + b)``, its
  time loop fused the same way.
- :class:`SLSTM`, :class:`MLSTM` (Beck et al. 2024, xLSTM): exponential gating with a
  stabilizer state; sLSTM's block-diagonal (per-head) recurrence, mLSTM's matrix memory in a
  parallel (training) and a recurrent (inference) form that agree.

All share :class:`~rnnlab.nn.modern.base.ModernLayer`'s API (``input_size, hidden_size,
num_layers, bias, batch_first, dropout, bidirectional``; ``forward(x, hx=None,
lengths=None)`` with ``PackedSequence``; ``step`` for streaming; ``explain()``).
"""

from rnnlab.nn.modern.base import ModernLayer
from rnnlab.nn.modern.indrnn import IndRNN
from rnnlab.nn.modern.mingru import MinGRU
from rnnlab.nn.modern.minlstm import MinLSTM
from rnnlab.nn.modern.mlstm import MLSTM
from rnnlab.nn.modern.slstm import SLSTM

__all__ = ["MLSTM", "SLSTM", "IndRNN", "MinGRU", "MinLSTM", "ModernLayer"]
