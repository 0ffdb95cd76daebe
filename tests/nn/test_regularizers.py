"""The extras behave as their definitions say, in training and in eval mode."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.nn import native, regularizers

FAMILIES: list[tuple[type[nn.Module], type[nn.Module], dict[str, Any]]] = [
    (rnnlab.RNN, nn.RNN, {}),
    (rnnlab.LSTM, nn.LSTM, {}),
    (rnnlab.LSTM, nn.LSTM, {"proj_size": 3}),
    (rnnlab.GRU, nn.GRU, {}),
]
IDS = ["rnn", "lstm", "lstm-proj", "gru"]


@pytest.mark.parametrize(("ours", "theirs", "options"), FAMILIES, ids=IDS)
@pytest.mark.parametrize("extra", ["recurrent_dropout", "weight_drop"])
def test_dropout_kinds_are_identity_in_eval(
    ours: Any, theirs: Any, options: Any, extra: str
) -> None:
    layer = ours(
        4, 5, num_layers=2, bidirectional=True, dropout=0.3, **options, **{extra: 0.5}
    ).eval()
    reference = theirs(4, 5, num_layers=2, bidirectional=True, dropout=0.3, **options).eval()
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(6, 3, 4)
    torch.testing.assert_close(layer(x)[0], reference(x)[0])
    assert layer.kernel().fused
    assert not torch.equal(layer.train()(x)[0], reference(x)[0])  # and active in training


def test_recurrent_dropout_mask_is_the_same_at_every_step() -> None:
    """With h_t = relu(h_{t-1} * m) (identity W_hh, no input), h_t = m**t elementwise.

    A mask drawn anew at each step would give other patterns (a unit that is 0 at t=1
    would be positive again, or a unit's value would not be a power of 1/(1-p)).
    """
    p, steps = 0.5, 6
    layer = rnnlab.RNN(1, 64, nonlinearity="relu", bias=False, recurrent_dropout=p)
    with torch.no_grad():
        layer.weight_ih_l0.zero_()
        layer.weight_hh_l0.copy_(torch.eye(64))
    h0 = torch.ones(1, 8, 64)
    out, _ = layer(torch.zeros(steps, 8, 1), h0)  # (T, B, H)
    mask = out[0]  # m itself
    assert set(mask.unique().tolist()) == {0.0, 1.0 / (1.0 - p)}
    for t in range(steps):
        torch.testing.assert_close(out[t], mask ** (t + 1))
    assert 0.3 < (mask > 0).float().mean().item() < 0.7
    # and the masks differ between sequences of the batch
    assert not torch.equal(mask[0], mask[1])


@pytest.mark.parametrize(("ours", "theirs", "options"), FAMILIES, ids=IDS)
def test_weight_drop_leaves_the_stored_weight_unchanged(
    ours: Any, theirs: Any, options: Any
) -> None:
    layer = ours(4, 5, weight_drop=0.5, **options).train()
    stored = layer.weight_hh_l0.detach().clone()
    assert layer.kernel().fused and layer.kernel().drop_connect
    out, _ = layer(torch.randn(6, 3, 4))
    out.sum().backward()
    assert torch.equal(layer.weight_hh_l0, stored)
    assert layer.weight_hh_l0.grad is not None
    assert layer.weight_hh_l0.grad.abs().sum() > 0


def test_drop_connect_mask_statistics() -> None:
    weight = torch.ones(400, 500)
    dropped = regularizers.drop_connect(weight, 0.3)
    assert dropped.unique().tolist() == pytest.approx([0.0, 1.0 / 0.7])
    assert dropped.mean().item() == pytest.approx(1.0, abs=0.01)  # unbiased
    assert torch.equal(weight, torch.ones(400, 500))


@pytest.mark.parametrize(("ours", "theirs", "options"), FAMILIES, ids=IDS)
def test_zoneout_expectation(ours: Any, theirs: Any, options: Any) -> None:
    """One step from a given state: E[h_1] = p h_0 + (1 - p) h~_1; eval computes exactly that."""
    p, batch = 0.3, 40000
    layer = ours(4, 5, zoneout=p, **options)
    plain = theirs(4, 5, **options)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(1, 1, 4).expand(1, batch, 4)
    out_size = options.get("proj_size", 5)
    h0 = torch.randn(1, 1, out_size).expand(1, batch, out_size)
    hx: Any = (h0, torch.randn(1, 1, 5).expand(1, batch, 5)) if ours is rnnlab.LSTM else h0
    candidate = plain(
        x[:, :1], tuple(s[:, :1] for s in hx) if isinstance(hx, tuple) else hx[:, :1]
    )[0][0, 0]
    expected = p * h0[0, 0] + (1 - p) * candidate
    with torch.no_grad():
        sampled = layer.train()(x, hx)[0][0]  # (batch, H)
        evaluated = layer.eval()(
            x[:, :1], tuple(s[:, :1] for s in hx) if isinstance(hx, tuple) else hx[:, :1]
        )[0]
    kept = torch.isclose(sampled, h0[0]).float().mean().item()
    assert kept == pytest.approx(p, abs=0.02)
    torch.testing.assert_close(sampled.mean(0), expected, atol=0.02, rtol=0)
    torch.testing.assert_close(evaluated[0, 0], expected)


def test_zoneout_on_lstm_cell_state() -> None:
    """For LSTM, c_1 is either c_0 (zoned out) or the new cell value, independently of h."""
    layer = rnnlab.LSTM(3, 4, zoneout=0.5).train()
    c0 = torch.full((1, 2000, 4), 7.0)  # far from any reachable new value
    h0 = torch.zeros(1, 2000, 4)
    _, (h1, c1) = layer(torch.randn(1, 2000, 3), (h0, c0))
    kept_c = (c1 == 7.0).float()
    kept_h = (h1 == 0.0).float()
    assert kept_c.mean().item() == pytest.approx(0.5, abs=0.03)
    # independent masks: P(both kept) ~ 0.25
    assert (kept_c * kept_h).mean().item() == pytest.approx(0.25, abs=0.03)


def test_forget_bias_initialization() -> None:
    lstm = rnnlab.LSTM(3, 4, num_layers=2, bidirectional=True, forget_bias=1.0)
    for suffix in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        assert torch.all(getattr(lstm, f"bias_ih{suffix}")[4:8] == 1.0)
        assert torch.all(getattr(lstm, f"bias_hh{suffix}")[4:8] == 0.0)
    assert lstm.kernel().fused  # an initialization only


def test_layer_norm_parameters_and_reset() -> None:
    gru = rnnlab.GRU(3, 4, layer_norm=True, bidirectional=True)
    names = [n for n, _ in gru.named_parameters() if n.startswith("ln_")]
    assert names == [
        f"ln_{where}_{kind}_l0{suffix}"
        for suffix in ("", "_reverse")
        for where in ("ih", "hh")
        for kind in ("weight", "bias")
    ]
    assert torch.all(gru.ln_ih_weight_l0 == 1) and torch.all(gru.ln_ih_bias_l0 == 0)
    lstm = rnnlab.LSTM(3, 4, layer_norm=True)
    assert lstm.ln_c_weight_l0.shape == (4,)
    assert not lstm.kernel().fused


def test_same_seed_same_initialization_as_torch() -> None:
    torch.manual_seed(5)
    ours = rnnlab.LSTM(3, 4, num_layers=2, layer_norm=True)
    torch.manual_seed(5)
    theirs = nn.LSTM(3, 4, num_layers=2)
    for name, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value)


@pytest.mark.parametrize("mode", ["native", "torch"])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_bernoulli_draws(mode: str, p: float) -> None:
    """Frequency within 5 standard errors; seeded draws repeat; 0 and 1 are exact."""
    n = 200_000
    like = torch.zeros(1)
    if mode == "torch":
        with native.python_loops():
            draws = regularizers.bernoulli((n,), p, like, torch.float32)
    else:
        if not native.built():
            pytest.skip(f"native kernels {native.status()}")
        draws = regularizers.bernoulli((n,), p, like, torch.float32)
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    frequency = float(draws.mean())
    assert abs(frequency - p) <= 5 * (p * (1 - p) / n) ** 0.5
    if p in (0.0, 1.0):
        assert frequency == p


def test_native_bernoulli_is_seeded_and_thread_independent() -> None:
    if not native.built():
        pytest.skip(f"native kernels {native.status()}")
    like = torch.zeros(1)
    threads = torch.get_num_threads()
    torch.manual_seed(3)
    first = regularizers.bernoulli((300, 500), 0.3, like, torch.bool)
    second = regularizers.bernoulli((300, 500), 0.3, like, torch.bool)
    torch.manual_seed(3)
    torch.set_num_threads(2)
    try:
        again = regularizers.bernoulli((300, 500), 0.3, like, torch.bool)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first, again)
    assert not torch.equal(first, second)
    # neighbouring elements are not correlated
    values = first.flatten().float()
    correlation = torch.corrcoef(torch.stack((values[:-1], values[1:])))[0, 1]
    assert abs(float(correlation)) < 0.02


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_seeded_drop_connect_applies_its_mask_in_one_pass(dtype: torch.dtype) -> None:
    """``SeededMask.apply`` is ``where(mask, x, 0) * scale`` with the mask it would draw,
    on 1 and 2 threads, and ``drop_connect`` under autograd keeps nothing for backward."""
    if not native.built():
        pytest.skip(f"native kernels {native.status()}")
    weight = torch.randn(300, 257, dtype=dtype)  # odd sizes: the vector loop's tail too
    mask = regularizers.SeededMask(tuple(weight.shape), 0.7, 99)
    expected = torch.where(mask.materialize(), weight, 0.0) * 2.5
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert torch.equal(mask.apply(weight, 2.5), expected)
    finally:
        torch.set_num_threads(threads)
    torch.set_num_threads(1)
    try:
        assert torch.equal(mask.apply(weight, 2.5), expected)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(mask.apply(weight.t().contiguous().t(), 2.5), expected)  # any layout

    leaf = weight.clone().requires_grad_()
    kept: list[torch.Tensor] = []
    torch.manual_seed(5)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        dropped = regularizers.drop_connect(leaf, 0.3)
    torch.manual_seed(5)
    reference = torch.where(regularizers.drop_connect_mask(weight, 0.3), weight, 0.0) / 0.7
    torch.testing.assert_close(dropped, reference, atol=0, rtol=1e-6)
    assert kept == []  # the seed only
    grad = torch.randn_like(weight)
    dropped.backward(grad)
    torch.testing.assert_close(leaf.grad, torch.where(reference != 0, grad / 0.7, 0.0))


def test_seeded_drop_connect_gradcheck() -> None:
    if not native.built():
        pytest.skip(f"native kernels {native.status()}")
    weight = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)

    def seeded(w: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)  # the same mask at every evaluation
        return regularizers.drop_connect(w, 0.4)

    assert torch.autograd.gradcheck(seeded, (weight,))
