"""On a CUDA device: the fused BPTT against the reference loop and, without extras, cuDNN.

Skipped without CUDA. The former ``benchmarks/fused_bptt_check.py``: for every cell family
and extra, the routed layer (fused BPTT) and the same layer under ``force_loop()`` run one
forward and backward with the same seed, hence the same masks, in float64 and float32;
outputs, states and all gradients must agree to the tolerance. Without extras,
``force_fused_bptt()`` is compared with torch's own kernel (cuDNN).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import rnnlab
from rnnlab.nn import force_fused_bptt, force_loop

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

VARIANTS: list[tuple[str, type[nn.Module], dict[str, Any]]] = [
    ("rnn-tanh", rnnlab.RNN, {}),
    ("rnn-relu", rnnlab.RNN, {"nonlinearity": "relu"}),
    ("lstm", rnnlab.LSTM, {}),
    ("lstm-proj", rnnlab.LSTM, {"proj_size": 16}),
    ("gru", rnnlab.GRU, {}),
]
EXTRAS: list[dict[str, Any]] = [
    {},  # plain: forced fused BPTT against torch's kernel
    {"layer_norm": True},
    {"recurrent_dropout": 0.3},
    {"zoneout": 0.2},
    {"layer_norm": True, "recurrent_dropout": 0.2, "zoneout": 0.2, "weight_drop": 0.3},
]
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}
DEVICE = torch.device("cuda")


@pytest.fixture(autouse=True)
def _no_tf32() -> Iterator[None]:
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _run(
    layer: nn.Module, x: Tensor, lengths: Tensor, context: AbstractContextManager[None]
) -> list[Tensor]:
    """Outputs, states and all gradients of one forward/backward with a fixed seed."""
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    torch.manual_seed(7)
    with context:
        out, state = layer(x, lengths=lengths)
    states = list(state) if isinstance(state, tuple) else [state]
    generator = torch.Generator(device=x.device).manual_seed(3)
    loss = sum(
        (t * torch.randn(t.shape, generator=generator, device=x.device, dtype=t.dtype)).sum()
        for t in [out, *states]
    )
    loss.backward()  # type: ignore[union-attr]
    grads = [p.grad for p in layer.parameters() if p.grad is not None]
    return [out.detach(), *(s.detach() for s in states), x.grad, *grads]


def _label(extras: dict[str, Any]) -> str:
    return "+".join(extras) or "plain-vs-torch-kernel"


@pytest.mark.parametrize("extras", EXTRAS, ids=_label)
@pytest.mark.parametrize(
    ("cls", "options"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS]
)
@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
def test_fused_bptt_matches_its_reference(
    dtype: torch.dtype, cls: type[nn.Module], options: dict[str, Any], extras: dict[str, Any]
) -> None:
    lengths = torch.tensor([20, 13, 7, 1])
    torch.manual_seed(0)
    layer = cls(8, 32, num_layers=2, bidirectional=True, dropout=0.1, **options, **extras)
    layer = layer.to(DEVICE, dtype)
    x = torch.randn(20, 4, 8, device=DEVICE, dtype=dtype)
    if extras:
        fast = _run(layer, x, lengths, nullcontext())
    else:  # fused BPTT forced against torch's kernel; dropout off (other masks)
        layer.dropout = 0.0
        fast = _run(layer, x, lengths, force_fused_bptt())
    reference = _run(layer, x, lengths, force_loop() if extras else nullcontext())
    worst = max(
        ((a - b).abs().max() / (1 + b.abs().max())).item()
        for a, b in zip(fast, reference, strict=True)
    )
    assert worst <= TOLERANCE[dtype]
