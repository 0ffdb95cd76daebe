"""The recurrent layer a ``[model]`` section names, and the one translation of its options.

The built-in cells register here (this module is the provider of
:data:`rnnlab.registry.CELLS`); every model builder, whatever its domain, turns the config
into layer keywords with :func:`layer_keywords` and builds the stack with
:func:`build_recurrent`, so an option added to :class:`~rnnlab.config.ModelConfig` reaches
every task through this one place.

Example:
    >>> from rnnlab.config import ModelConfig
    >>> layer_keywords(ModelConfig(cell="gru", zoneout=0.1))["zoneout"]
    0.1
    >>> "proj_size" in layer_keywords(ModelConfig(cell="gru"))  # an LSTM-only option
    False
    >>> type(build_recurrent(ModelConfig(cell="gru", hidden_size=8), input_size=3)).__name__
    'GRU'
"""

from __future__ import annotations

from typing import Any

from torch import nn

from rnnlab.config import ModelConfig
from rnnlab.nn import GRU, LSTM, RNN
from rnnlab.nn.modern import MLSTM, SLSTM, IndRNN, MinGRU, MinLSTM
from rnnlab.registry import CELLS, cell_options

CELLS.add("rnn", RNN)
CELLS.add("lstm", LSTM)
CELLS.add("gru", GRU)
CELLS.add("mingru", MinGRU)
CELLS.add("minlstm", MinLSTM)
CELLS.add("indrnn", IndRNN)
CELLS.add("slstm", SLSTM)
CELLS.add("mlstm", MLSTM)

LAYER_FIELDS = (
    "num_layers",
    "bidirectional",
    "dropout",
    "layer_norm",
    "recurrent_dropout",
    "zoneout",
    "weight_drop",
    "forget_bias",
    "nonlinearity",
    "proj_size",
)
"""``[model]`` fields that are recurrent-layer keywords of the same name."""


def layer_keywords(config: ModelConfig) -> dict[str, Any]:
    """The layer keywords of ``config`` that its cell's constructor accepts.

    Options of other cells are left out (the config has already refused them when set to a
    non-default value on the wrong cell).
    """
    accepted = cell_options(config.cell)
    return {name: getattr(config, name) for name in LAYER_FIELDS if name in accepted}


def build_recurrent(
    config: ModelConfig, input_size: int, hidden_size: int | None = None, **overrides: Any
) -> nn.Module:
    """The batch-first recurrent stack named by ``config.cell``, with the config's extras.

    Args:
        config: the ``[model]`` section.
        input_size: features per step reaching the stack.
        hidden_size: default ``config.hidden_size`` (a model may size one stack otherwise,
            e.g. a tied language model's last layer).
        overrides: layer keywords that replace the config's (``num_layers=1``, ...;
            ``batch_first=False`` for a time-major model such as the language model).
    """
    keywords = {"batch_first": True, **layer_keywords(config), **overrides}
    layer = CELLS.get(config.cell)
    return layer(input_size, hidden_size or config.hidden_size, **keywords)
