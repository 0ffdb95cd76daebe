"""Analysis: gradient flow, gate and hidden-state statistics, plots, and study conclusions.

- ``trace``: run an RNN/LSTM/GRU layer step by step on its own weights, keeping every state.
- ``gradient_flow``: ``||dL/dh_t||`` per step and layer; the ratio ``||dL/dh_1|| / ||dL/dh_T||``.
- ``gates``: mean activation and fraction saturated of each LSTM/GRU gate.
- ``hidden``: mean and standard deviation of ``h_t`` over time.
- ``plots``: PNG figures of the above, written atomically.
- ``conclusions``: sentences generated from a study's numbers.
- ``diagnose``: all of the above for a config's or a run's model (``rnnlab diagnose``).
- ``comparison``: architecture studies, run and reported (``rnnlab compare``); its modules
  are imported directly (``rnnlab.analysis.comparison.workflow.compare``).
"""

from rnnlab.analysis.conclusions import (
    SOLVED,
    Criterion,
    Record,
    Summary,
    conclusions,
    markdown_table,
    summarize,
)
from rnnlab.analysis.gates import GateStat, gate_statistics, gate_statistics_of_trace, gate_table
from rnnlab.analysis.gradient_flow import (
    GradientFlow,
    gradient_flow,
    gradient_flow_of_states,
    gradient_norms,
)
from rnnlab.analysis.hidden import HiddenStats, hidden_statistics, hidden_statistics_of_trace
from rnnlab.analysis.plots import (
    plot_gate_statistics,
    plot_gradient_flow,
    plot_hidden_statistics,
    save_figure,
)
from rnnlab.analysis.trace import Trace, trace

__all__ = [
    "SOLVED",
    "Criterion",
    "GateStat",
    "GradientFlow",
    "HiddenStats",
    "Record",
    "Summary",
    "Trace",
    "conclusions",
    "gate_statistics",
    "gate_statistics_of_trace",
    "gate_table",
    "gradient_flow",
    "gradient_flow_of_states",
    "gradient_norms",
    "hidden_statistics",
    "hidden_statistics_of_trace",
    "markdown_table",
    "plot_gate_statistics",
    "plot_gradient_flow",
    "plot_hidden_statistics",
    "save_figure",
    "summarize",
    "trace",
]
