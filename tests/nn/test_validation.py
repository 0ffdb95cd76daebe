"""Bad input raises ValueError naming the value and what was expected."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: rnnlab.LSTM(-1, 4), "input_size must be an integer >= 1, got -1"),
        (lambda: rnnlab.GRU(3, 0), "hidden_size must be an integer >= 1, got 0"),
        (lambda: rnnlab.RNN(3, 4, num_layers=0), "num_layers must be an integer >= 1, got 0"),
        (
            lambda: rnnlab.LSTM(3, 4, dropout=1.0),
            "dropout must be a probability in [0, 1), got 1.0",
        ),
        (
            lambda: rnnlab.GRU(3, 4, dropout=-0.1),
            "dropout must be a probability in [0, 1), got -0.1",
        ),
        (
            lambda: rnnlab.LSTM(3, 4, zoneout=1.5),
            "zoneout must be a probability in [0, 1), got 1.5",
        ),
        (
            lambda: rnnlab.RNN(3, 4, recurrent_dropout=1),
            "recurrent_dropout must be a probability in [0, 1), got 1",
        ),
        (
            lambda: rnnlab.GRU(3, 4, weight_drop=2.0),
            "weight_drop must be a probability in [0, 1), got 2.0",
        ),
        (
            lambda: rnnlab.RNN(3, 4, nonlinearity="sigmoid"),
            "nonlinearity must be one of ('tanh', 'relu'), got 'sigmoid'",
        ),
        (
            lambda: rnnlab.RNNCell(3, 4, nonlinearity="gelu"),
            "nonlinearity must be one of ('tanh', 'relu'), got 'gelu'",
        ),
        (
            lambda: rnnlab.LSTM(3, 4, proj_size=4),
            "proj_size must be smaller than hidden_size=4, got 4",
        ),
        (lambda: rnnlab.LSTM(3, 4, proj_size=-2), "proj_size must be an integer >= 0, got -2"),
        (lambda: rnnlab.LSTM(3, 4, bias=False, forget_bias=1.0), "forget_bias=1.0 needs bias=True"),
        (lambda: rnnlab.LSTMCell(0, 4), "input_size must be an integer >= 1, got 0"),
    ],
)
def test_constructor_errors(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


LAYER = rnnlab.LSTM(3, 4, num_layers=2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: LAYER(torch.randn(2, 3, 4, 3)),
            "LSTM: input must be 2-D or 3-D, got 4-D of shape (2, 3, 4, 3)",
        ),
        (
            lambda: LAYER(torch.randn(5, 2, 7)),
            "LSTM: input feature size (last dimension) must be input_size=3, got 7",
        ),
        (
            lambda: LAYER(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4))),
            "LSTM: h_0 must have shape (2, 2, 4), got (1, 2, 4)",
        ),
        (
            lambda: LAYER(torch.randn(5, 2, 3), (torch.zeros(2, 2, 4), torch.zeros(2, 3, 4))),
            "LSTM: c_0 must have shape (2, 2, 4), got (2, 3, 4)",
        ),
        (
            lambda: LAYER(torch.randn(5, 2, 3), torch.zeros(2, 2, 4)),
            "LSTM: hx must be a pair (h_0, c_0), got Tensor",
        ),
        (
            lambda: LAYER(torch.randn(5, 2, 3), lengths=[5]),
            "lengths must have one entry per sequence: expected 2, got 1",
        ),
        (
            lambda: LAYER(torch.randn(5, 2, 3), lengths=[5, 6]),
            "lengths[1] = 6 is out of range: each length must be in [1, 5]",
        ),
        (
            lambda: LAYER(torch.randn(5, 2, 3), lengths=[0, 3]),
            "lengths[0] = 0 is out of range: each length must be in [1, 5]",
        ),
        (
            lambda: LAYER(torch.randn(5, 2, 3), lengths=[2.5, 3.0]),
            "lengths must be a 1-D integer tensor or sequence",
        ),
        (
            lambda: LAYER(torch.randn(5, 3), lengths=[5]),
            "LSTM: lengths needs a batched 3-D input, got 2-D",
        ),
        (
            lambda: LAYER(pack_padded_sequence(torch.randn(5, 2, 3), [5, 2]), lengths=[5, 2]),
            "LSTM: pass lengths only with a padded tensor, not with a PackedSequence",
        ),
        (
            lambda: rnnlab.GRU(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 4)),
            "GRU: h_0 must have shape (1, 2, 4), got (1, 4)",
        ),
        (
            lambda: rnnlab.GRUCell(3, 4)(torch.randn(2, 3), torch.zeros(3, 4)),
            "GRUCell: h must have shape (2, 4), got (3, 4)",
        ),
        (
            lambda: rnnlab.RNNCell(3, 4)(torch.randn(2, 5)),
            "RNNCell: input feature size (last dimension) must be input_size=3, got 5",
        ),
    ],
)
def test_call_errors(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
