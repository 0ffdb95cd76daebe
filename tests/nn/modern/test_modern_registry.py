"""The modern cells as config cells: registered, built by build_recurrent, options checked."""

from __future__ import annotations

import pytest
import torch

from rnnlab import config as cfg
from rnnlab.errors import ConfigError
from rnnlab.models.stack import build_recurrent
from rnnlab.nn.modern import MLSTM, SLSTM, IndRNN, MinGRU, MinLSTM
from rnnlab.registry import CELLS


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("mingru", MinGRU),
        ("minlstm", MinLSTM),
        ("indrnn", IndRNN),
        ("slstm", SLSTM),
        ("mlstm", MLSTM),
    ],
)
def test_registered_and_built_from_a_config(name: str, cls: type) -> None:
    assert CELLS.get(name) is cls
    model = cfg.ModelConfig(cell=name, hidden_size=6, num_layers=2, bidirectional=True, dropout=0.1)
    layer = build_recurrent(model, input_size=3)
    assert isinstance(layer, cls) and layer.batch_first and layer.num_layers == 2
    out, state = layer(torch.randn(2, 5, 3), lengths=[5, 2])
    h_n = state[0] if isinstance(state, tuple) else state  # xLSTM states are (h, ...)
    assert tuple(out.shape) == (2, 5, 12) and tuple(h_n.shape) == (4, 2, 6)


@pytest.mark.parametrize(
    "option", ["layer_norm=true", "zoneout=0.1", "nonlinearity=relu", "proj_size=2"]
)
def test_options_the_cell_lacks_are_refused(option: str) -> None:
    raw = {
        "task": {"name": "adding"},
        "model": {"cell": "mingru", "hidden_size": 4},
        "train": {"epochs": 1},
    }
    with pytest.raises(ConfigError, match=f"model.{option.split('=')[0]}: only cell"):
        cfg.with_overrides(cfg.from_dict(raw), [f"model.{option}"])
