"""broadcast_step: one step on broadcast inputs and states equals the layer on the pairs."""

from __future__ import annotations

import pytest
import torch

from rnnlab.nn import GRU, LSTM, RNN
from rnnlab.nn.broadcast_step import broadcast_step, supports_broadcast_step

N, Q, IN, H = 3, 4, 5, 6


def _layer(kind: str, **extras: object) -> torch.nn.Module:
    if kind == "lstm":
        return LSTM(IN, H, batch_first=True, **extras)
    if kind == "gru":
        return GRU(IN, H, batch_first=True, **extras)
    return RNN(IN, H, batch_first=True, nonlinearity=kind.removeprefix("rnn-"), **extras)


def _state(kind: str, layer: torch.nn.Module, dtype: torch.dtype = torch.float32):
    out = layer.proj_size or H
    h = torch.randn(N, 1, out, dtype=dtype)
    return (h, torch.randn(N, 1, H, dtype=dtype)) if kind == "lstm" else h


def _on_pairs(layer, queries, state):
    """The reference: the layer run on all N * Q materialized (state, query) pairs."""
    flat = queries.expand(N, Q, -1).reshape(N * Q, 1, -1)

    def rows(s):
        return s.expand(N, Q, -1).reshape(1, N * Q, -1)

    hx = (rows(state[0]), rows(state[1])) if isinstance(state, tuple) else rows(state)
    out, _ = layer(flat, hx)
    return out[:, 0].reshape(N, Q, -1)


CASES = [
    ("rnn-tanh", {}),
    ("rnn-relu", {}),
    ("gru", {}),
    ("lstm", {}),
    ("gru", {"layer_norm": True}),
    ("lstm", {"layer_norm": True}),
    ("lstm", {"proj_size": 3}),
]


@pytest.mark.parametrize(("kind", "extras"), CASES)
@pytest.mark.parametrize("training", [False, True])
def test_equals_the_layer_on_materialized_pairs(kind, extras, training):
    torch.manual_seed(0)
    layer = _layer(kind, **extras).train(training)
    queries = torch.randn(1, Q, IN)
    state = _state(kind, layer)
    out, new_state = broadcast_step(layer, queries, state)
    assert out.shape == (N, Q, layer.proj_size or H)
    torch.testing.assert_close(out, _on_pairs(layer, queries, state), rtol=1e-5, atol=1e-6)
    if kind == "lstm":
        assert isinstance(new_state, tuple) and new_state[1].shape == (N, Q, H)


@pytest.mark.parametrize(("kind", "extras"), CASES)
def test_gradcheck_float64(kind, extras):
    torch.manual_seed(1)
    layer = _layer(kind, **extras).double()
    queries = torch.randn(1, Q, IN, dtype=torch.float64, requires_grad=True)
    state = _state(kind, layer, torch.float64)
    if isinstance(state, tuple):
        h, c = (s.requires_grad_() for s in state)

        def fn(q, h, c, w_ih, w_hh):
            return broadcast_step(layer, q, (h, c))[1][1]

        inputs = (queries, h, c)
    else:
        h = state.requires_grad_()

        def fn(q, h, w_ih, w_hh):  # type: ignore[misc]
            return broadcast_step(layer, q, h)[0]

        inputs = (queries, h)
    # The weights enter through the layer: check them by gradcheck on the parameters too.
    params = (layer.weight_ih_l0, layer.weight_hh_l0)
    assert torch.autograd.gradcheck(fn, (*inputs, *params))


def test_gradients_match_the_materialized_pairs():
    torch.manual_seed(2)
    layer = GRU(IN, H, batch_first=True)
    queries = torch.randn(1, Q, IN, requires_grad=True)
    h = torch.randn(N, 1, H, requires_grad=True)
    broadcast_step(layer, queries, h)[0].square().sum().backward()
    fast = [queries.grad.clone(), h.grad.clone(), layer.weight_hh_l0.grad.clone()]
    queries.grad = h.grad = None
    layer.zero_grad()
    _on_pairs(layer, queries, h).square().sum().backward()
    slow = [queries.grad, h.grad, layer.weight_hh_l0.grad]
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_which_layers_are_covered():
    assert supports_broadcast_step(GRU(IN, H))
    assert not supports_broadcast_step(GRU(IN, H, num_layers=2))
    assert not supports_broadcast_step(GRU(IN, H, bidirectional=True))
    assert not supports_broadcast_step(torch.nn.GRU(IN, H))
    zoneout = GRU(IN, H, zoneout=0.1)
    assert not supports_broadcast_step(zoneout.train())
    assert not supports_broadcast_step(zoneout.eval())  # eval mixes in the previous state
    dropped = _layer("lstm", recurrent_dropout=0.2)
    assert not supports_broadcast_step(dropped.train())
    assert supports_broadcast_step(dropped.eval())  # recurrent dropout is off in eval
    torch.manual_seed(3)
    queries, h = torch.randn(1, Q, IN), torch.randn(N, 1, H)
    c = torch.randn(N, 1, H)
    torch.testing.assert_close(
        broadcast_step(dropped, queries, (h, c))[0],
        _on_pairs(dropped, queries, (h, c)),
        rtol=1e-5,
        atol=1e-6,
    )
    drop_connect = _layer("gru", weight_drop=0.3).eval()  # DropConnect is off in eval
    assert supports_broadcast_step(drop_connect)
    torch.testing.assert_close(
        broadcast_step(drop_connect, queries, h)[0],
        _on_pairs(drop_connect, queries, h),
        rtol=1e-5,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="single-layer"):
        broadcast_step(GRU(IN, H, num_layers=2), torch.randn(1, Q, IN), torch.randn(N, 1, H))
