"""rnnlab: recurrent neural networks, from simple RNNs to LSTM and GRU."""

from rnnlab.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "__version__",
]
