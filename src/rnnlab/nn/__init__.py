"""Recurrent building blocks: drop-in torch.nn layers and cells, with lengths and extras."""

from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.nn.kernels import KernelChoice, force_fused_bptt, force_loop, select_kernel
from rnnlab.nn.layers import GRU, LSTM, RNN
from rnnlab.nn.recurrent import RecurrentLayer

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "KernelChoice",
    "LSTMCell",
    "RNNCell",
    "RecurrentLayer",
    "force_fused_bptt",
    "force_loop",
    "select_kernel",
]
