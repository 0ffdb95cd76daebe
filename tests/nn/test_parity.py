"""Parity with torch.nn.RNN / LSTM / GRU over the grid of constructor and call options.

Both of rnnlab's implementations are checked: the routed one (torch's fused kernel when no
extra is active) and rnnlab's own time loop (forced), which layers with extras run.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from typing import Any

import pytest
import torch
from tests.nn.helpers import INPUT, VARIANTS, Variant, initial_state, make_pair, state_tensors
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnlab.nn import force_loop

STEPS, BATCH = 7, 4
LENGTHS = torch.tensor([7, 3, 1, 5])
TOL = {"atol": 1e-5, "rtol": 1e-5}

GRID = list(
    itertools.product(
        [1, 2],  # num_layers
        [False, True],  # bidirectional
        [False, True],  # batch_first
        [True, False],  # bias
        [False, True],  # initial state given
        [0.0, 0.25],  # dropout between layers
    )
)


def _run(
    layer: nn.Module, x: Tensor, hx: Any, mode: str, batch_first: bool
) -> tuple[Tensor, list[Tensor]]:
    """Call ``layer`` in ``mode``; return the output as a padded tensor and the final states.

    torch.nn has no ``lengths=``: its reference for "lengths" packs, runs and pads.
    """
    is_ours = hasattr(layer, "explain")
    if mode == "plain":
        out, state = layer(x, hx)
    elif mode == "lengths" and is_ours:
        out, state = layer(x, hx, lengths=LENGTHS)
    else:
        packed = pack_padded_sequence(x, LENGTHS, batch_first, enforce_sorted=False)
        out_packed, state = layer(packed, hx)
        assert isinstance(out_packed, PackedSequence)
        torch.testing.assert_close(out_packed.sorted_indices, packed.sorted_indices)
        out, _ = pad_packed_sequence(out_packed, batch_first, total_length=STEPS)
    return out, state_tensors(state)


def _forward_backward(
    layer: nn.Module, variant: Variant, options: tuple[Any, ...], mode: str, seed: int
) -> dict[str, Tensor]:
    _num_layers, _bidirectional, batch_first, _bias, with_state, _dropout = options
    torch.manual_seed(1)
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = torch.randn(shape, requires_grad=True)
    hx = initial_state(variant, layer, BATCH) if with_state else None
    if hx is not None:
        hx = tuple(h.requires_grad_() for h in hx) if isinstance(hx, tuple) else hx.requires_grad_()
    torch.manual_seed(seed)  # same dropout masks for the same kernel
    out, states = _run(layer, x, hx, mode, batch_first)
    torch.manual_seed(2)
    loss = (out * torch.randn(out.shape)).sum() + sum(
        (s * torch.randn(s.shape)).sum() for s in states
    )
    loss.backward()
    result = {"output": out.detach(), "x.grad": x.grad}
    result.update({f"state{i}": s.detach() for i, s in enumerate(states)})
    if hx is not None:
        result.update({f"hx{i}.grad": h.grad for i, h in enumerate(state_tensors(hx))})
    result.update({f"{n}.grad": p.grad for n, p in layer.named_parameters()})
    return result


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
@pytest.mark.parametrize("mode", ["plain", "lengths", "packed"])
@pytest.mark.parametrize("path", ["routed", "loop"])
def test_matches_torch_nn(variant: Variant, mode: str, path: str) -> None:
    for options in GRID:
        num_layers, bidirectional, batch_first, bias, _, dropout = options
        if dropout and num_layers == 1:
            continue
        kwargs = {
            "num_layers": num_layers,
            "bidirectional": bidirectional,
            "batch_first": batch_first,
            "bias": bias,
            "dropout": dropout,
        }
        ours, theirs = make_pair(variant, **kwargs)
        # Kernels other than torch's draw the dropout masks between layers on the padded
        # tensor, torch's on the packed data: compare those without dropout (eval mode).
        native_packed = mode != "plain" and not ours.kernel(BATCH).fused
        if dropout and (path == "loop" or native_packed):
            ours.eval()
            theirs.eval()
        with force_loop() if path == "loop" else nullcontext():
            got = _forward_backward(ours, variant, options, mode, seed=3)
        want = _forward_backward(theirs, variant, options, mode, seed=3)
        assert got.keys() == want.keys()
        for key in want:
            torch.testing.assert_close(
                got[key], want[key], **TOL, msg=lambda m, k=key, o=options: f"{k} {o}: {m}"
            )


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_loads_torch_state_dict(variant: Variant) -> None:
    torch.manual_seed(0)
    theirs = variant.theirs(INPUT, 6, num_layers=2, bidirectional=True, **variant.options)
    ours = variant.ours(INPUT, 6, num_layers=2, bidirectional=True, **variant.options)
    ours.load_state_dict(theirs.state_dict())  # strict: same names and shapes
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(5, 3, INPUT)
    out_ours, _ = ours(x)
    out_theirs, _ = theirs(x)
    torch.testing.assert_close(out_ours, out_theirs, **TOL)
    with force_loop():
        out_loop, _ = ours(x)
    torch.testing.assert_close(out_loop, out_theirs, **TOL)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_unbatched_input(variant: Variant) -> None:
    ours, theirs = make_pair(variant, num_layers=2)
    x = torch.randn(6, INPUT)
    hx = initial_state(variant, ours, 1)
    hx = tuple(h.squeeze(1) for h in hx) if isinstance(hx, tuple) else hx.squeeze(1)
    want_out, want_state = theirs(x, hx)
    with force_loop():
        got_out, got_state = ours(x, hx)
    torch.testing.assert_close(got_out, want_out, **TOL)
    for got, want in zip(state_tensors(got_state), state_tensors(want_state), strict=True):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_lengths_semantics(variant: Variant) -> None:
    """Outputs past a length are zero; h_n is the state at each sequence's last step."""
    ours, _ = make_pair(variant, bidirectional=True, batch_first=True, zoneout=0.0)
    x = torch.randn(BATCH, STEPS, INPUT)
    for path in ("routed", "loop"):
        with force_loop() if path == "loop" else nullcontext():
            out, state = ours(x, lengths=LENGTHS)
        h_n = state_tensors(state)[0]
        for b, length in enumerate(LENGTHS.tolist()):
            assert torch.all(out[b, length:] == 0)
            alone, alone_state = ours(x[b : b + 1, :length])
            torch.testing.assert_close(out[b : b + 1, :length], alone, **TOL)
            torch.testing.assert_close(h_n[:, b], state_tensors(alone_state)[0][:, 0], **TOL)
