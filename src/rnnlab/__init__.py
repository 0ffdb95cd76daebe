"""rnnlab: recurrent neural networks, from simple RNNs to LSTM and GRU."""

__version__ = "0.1.0"

from rnnlab.api import evaluate, train
from rnnlab.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "__version__",
    "evaluate",
    "train",
]
