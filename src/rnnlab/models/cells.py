"""The cell registry: config name -> recurrent layer class.

Every layer registered here has the ``torch.nn.RNN/LSTM/GRU`` constructor and call
(``layer(x, hx=None, lengths=None) -> (output, h_n)``, ``h_n`` a tensor or an ``(h, c)`` pair).
A new cell joins with one line, and ``model.cell = "<name>"`` works in every config::

    CELLS.add("mycell", MyLayer)

The keyword options a cell accepts are read from its constructor's signature, so the config
can tell which extras apply to which cell (``forget_bias`` and ``proj_size``: LSTM;
``nonlinearity``: RNN).
"""

from __future__ import annotations

import inspect

from torch import nn

from rnnlab.nn import GRU, LSTM, RNN
from rnnlab.registry import Registry

CELLS: Registry[type[nn.Module]] = Registry("cell")
CELLS.add("rnn", RNN)
CELLS.add("lstm", LSTM)
CELLS.add("gru", GRU)


def cell_options(name: str) -> frozenset[str]:
    """Keyword options the constructor of cell ``name`` accepts."""
    return frozenset(inspect.signature(CELLS.get(name).__init__).parameters) - {"self"}
