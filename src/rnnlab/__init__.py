"""rnnlab: recurrent neural networks, from simple RNNs to LSTM and GRU."""

__version__ = "0.1.0"

from rnnlab.api import evaluate, train
from rnnlab.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

_LAZY = {
    "compare": ("rnnlab.analysis.comparison.workflow", "compare"),
    "diagnose": ("rnnlab.analysis.diagnose", "diagnose"),
    "tune": ("rnnlab.tuning.search", "tune"),
}


def __getattr__(name: str) -> object:
    """``rnnlab.compare``, ``rnnlab.diagnose`` and ``rnnlab.tune``, imported on first use.

    Their modules pull in matplotlib and Optuna, which ``import rnnlab`` should not pay for.
    """
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")


__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "__version__",
    "compare",
    "diagnose",
    "evaluate",
    "train",
    "tune",
]
