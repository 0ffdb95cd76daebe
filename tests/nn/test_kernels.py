"""Kernel routing: torch's fused kernel without extras, fused BPTT with step-changing extras."""

from __future__ import annotations

import rnnlab
from rnnlab.nn import force_loop


def test_plain_layer_runs_torch_fused() -> None:
    lstm = rnnlab.LSTM(3, 4)
    assert lstm.kernel().name == "torch-fused"
    assert "torch's own fused kernel" in lstm.explain()


def test_step_changing_extras_run_fused_bptt_and_say_why() -> None:
    gru = rnnlab.GRU(3, 4, layer_norm=True, recurrent_dropout=0.2)
    assert gru.kernel().name == "rnnlab-fused-bptt"
    assert "layer_norm" in gru.explain() and "recurrent_dropout=0.2" in gru.explain()


def test_dropout_extras_are_fused_in_eval_but_zoneout_is_not() -> None:
    rnn = rnnlab.RNN(3, 4, recurrent_dropout=0.3, weight_drop=0.3)
    assert not rnn.kernel().fused and rnn.kernel().drop_connect
    rnn.eval()
    assert rnn.kernel().fused and not rnn.kernel().drop_connect
    assert "recurrent_dropout, weight_drop inactive in eval mode" in rnn.explain()
    zoned = rnnlab.LSTM(3, 4, zoneout=0.1).eval()
    assert not zoned.kernel().fused
    assert "mixes in the previous state" in zoned.explain()


def test_weight_drop_alone_stays_fused() -> None:
    lstm = rnnlab.LSTM(3, 4, weight_drop=0.5)
    assert lstm.kernel().fused and lstm.kernel().drop_connect
    assert "DropConnect" in lstm.explain()


def test_force_loop_is_scoped() -> None:
    lstm = rnnlab.LSTM(3, 4)
    with force_loop():
        assert lstm.kernel().name == "rnnlab-loop"
    assert lstm.kernel().name == "torch-fused"


def test_extra_repr_lists_active_extras() -> None:
    text = repr(rnnlab.LSTM(3, 4, zoneout=0.1, forget_bias=1.0))
    assert "zoneout=0.1" in text and "forget_bias=1.0" in text and "layer_norm" not in text
