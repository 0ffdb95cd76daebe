"""rnnlab: recurrent neural networks, from simple RNNs to LSTM and GRU."""

__version__ = "0.1.0"

from rnnlab.api import evaluate, train
from rnnlab.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

_LAZY = {
    "compare": ("rnnlab.analysis.comparison.workflow", "compare"),
    "diagnose": ("rnnlab.analysis.diagnose", "diagnose"),
    "tune": ("rnnlab.tuning.search", "tune"),
    "generate": ("rnnlab.language.run", "generate_from_run"),
    "forecast": ("rnnlab.forecasting.predict", "forecast"),
    "recognize": ("rnnlab.speech.recognize", "recognize"),
    "load": ("rnnlab.serving.load", "load"),
}


def __getattr__(name: str) -> object:
    """The Python forms of the commands, imported on first use: ``rnnlab.compare``,
    ``rnnlab.diagnose``, ``rnnlab.tune``, ``rnnlab.generate``, ``rnnlab.forecast``,
    ``rnnlab.recognize``, and ``rnnlab.load`` (a trained run's predictor, for serving).

    Their modules pull in matplotlib, pandas and Optuna, which ``import rnnlab`` should not
    pay for.
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
    "forecast",
    "generate",
    "load",
    "recognize",
    "train",
    "tune",
]
