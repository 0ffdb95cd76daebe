"""Kernel routing: torch's fused kernel without extras, fused BPTT with step-changing extras."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.nn import force_loop, native
from rnnlab.nn.routes import NATIVE_ROUTES, Route, describe_routes, native_route


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


def _native_or_skip() -> None:
    if not native.built():
        pytest.skip(f"native loops {native.status()}")


def test_plain_layers_train_through_native_loops_where_faster() -> None:
    _native_or_skip()
    gru = rnnlab.GRU(8, 256)
    assert gru.kernel(batch=32).name == "rnnlab-fused-bptt"
    assert "faster than torch's" in gru.explain(batch=32)
    assert gru.kernel(batch=512).name == "rnnlab-fused-bptt"  # H 256 at batch 512: 0.92x
    assert rnnlab.GRU(8, 512).kernel(batch=512).name == "torch-fused"  # torch's kernel wins
    assert gru.kernel(batch=1024).name == "torch-fused"  # not measured: no claim
    assert gru.kernel().name == "torch-fused"  # batch unknown: no claim
    assert rnnlab.LSTM(8, 512).kernel(batch=4).name == "rnnlab-fused-bptt"
    assert rnnlab.LSTM(8, 512).kernel(batch=64).name == "torch-fused"
    assert rnnlab.LSTM(8, 256).kernel(batch=32).name == "torch-fused"  # oneDNN as fast there
    assert rnnlab.LSTM(8, 128).kernel(batch=128).name == "rnnlab-fused-bptt"
    assert rnnlab.LSTM(8, 128).kernel(batch=512).name == "torch-fused"
    assert rnnlab.RNN(8, 64).kernel(batch=1).name == "rnnlab-fused-bptt"


def test_native_plain_routing_only_when_training_with_gradients() -> None:
    _native_or_skip()
    gru = rnnlab.GRU(8, 64)
    with torch.no_grad():
        assert gru.kernel(batch=4).name == "torch-fused"
    assert gru.eval().kernel(batch=4).name == "torch-fused"
    assert rnnlab.GRU(8, 64).to(torch.bfloat16).kernel(batch=4).name == "torch-fused"
    with native.python_loops():
        assert rnnlab.GRU(8, 64).kernel(batch=4).name == "torch-fused"


def test_native_plain_routing_matches_torch_nn_in_training() -> None:
    _native_or_skip()
    torch.manual_seed(0)
    ours = rnnlab.GRU(6, 64, num_layers=2, bidirectional=True)
    theirs = torch.nn.GRU(6, 64, num_layers=2, bidirectional=True)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(7, 5, 6)
    assert ours.kernel(batch=5).name == "rnnlab-fused-bptt"
    out, h = ours(x)
    want_out, want_h = theirs(x)
    (out.square().sum() + h.sum()).backward()
    (want_out.square().sum() + want_h.sum()).backward()
    torch.testing.assert_close(out, want_out, atol=1e-5, rtol=1e-5)
    for (name, got), want in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(
            got.grad, want.grad, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}"
        )


def test_explain_says_where_the_time_loops_run() -> None:
    layer = rnnlab.LSTM(4, 8, zoneout=0.1)
    with native.python_loops():
        assert "time loops run in Python (forced by" in layer.explain()
    if native.built():
        assert "time loops run as compiled C++" in layer.explain()
        threads = native.ops().parallel_threads()
        assert threads == 1 or f"batch rows split between {threads} threads" in layer.explain()
    else:
        assert "time loops run in Python (native kernel unavailable" in layer.explain()


def test_plain_rnn_routing_follows_its_measured_rule() -> None:
    _native_or_skip()
    assert rnnlab.RNN(8, 1024).kernel(batch=256).name == "rnnlab-fused-bptt"  # 0.90x
    assert rnnlab.RNN(8, 512).kernel(batch=512).name == "rnnlab-fused-bptt"  # 0.91x
    assert rnnlab.RNN(8, 1024).kernel(batch=512).name == "torch-fused"  # 0.98x: break-even


def test_lstm_drop_connect_at_batch_one_runs_native_keeping_no_masked_copy() -> None:
    _native_or_skip()
    lstm = rnnlab.LSTM(8, 64, weight_drop=0.5)
    assert lstm.kernel(batch=1).name == "rnnlab-fused-bptt"
    assert "weight_drop at batch <= 2" in lstm.explain(batch=1)
    assert lstm.kernel(batch=8).name == "torch-fused"  # oneDNN with the masked copy
    assert rnnlab.LSTM(8, 64).kernel(batch=1).name == "torch-fused"  # no DropConnect
    assert lstm.eval().kernel(batch=1).name == "torch-fused"  # no DropConnect in eval
    lstm.train()
    weight_like: list[torch.Size] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.shape == lstm.weight_hh_l0.shape and tensor is not lstm.weight_hh_l0:
            weight_like.append(tensor.shape)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = lstm(torch.randn(5, 1, 8))
    out.sum().backward()
    assert weight_like == []  # the mask's seed only, no masked W_hh


def test_route_rows_decide_and_explain_themselves() -> None:
    narrow_gru = Route("gru", batch_max=512, hidden_max=256)
    assert narrow_gru.matches(256, 512, frozenset()) and not narrow_gru.matches(
        512, 512, frozenset()
    )
    assert not narrow_gru.matches(256, None, frozenset())  # batch unknown: no claim
    assert narrow_gru.condition() == "batch <= 512 and hidden <= 256"
    assert Route("lstm", batch_min=128, batch_max=256).condition() == "batch 128-256"
    dropped = Route("lstm", batch_max=2, needs="weight_drop")
    assert dropped.condition() == "weight_drop at batch <= 2"
    assert not dropped.matches(64, 1, frozenset()) and dropped.matches(
        64, 1, frozenset({"weight_drop"})
    )
    assert len(describe_routes().splitlines()) == len(NATIVE_ROUTES)


def test_native_route_takes_the_first_matching_row() -> None:
    route = native_route("rnn", hidden=512, batch=512, extras=frozenset())
    assert route is not None and route.condition() == "batch <= 512 and hidden <= 512"
    assert native_route("rnn", hidden=1024, batch=512, extras=frozenset()) is None
    assert native_route("lstm", hidden=64, batch=2, extras=frozenset({"weight_drop"})) is not None
    assert native_route("gru", hidden=64, batch=1, extras=frozenset({"weight_drop"})) is not None
