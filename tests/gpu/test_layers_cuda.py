"""On a CUDA device: rnnlab layers against cuDNN, the fused BPTT against the reference loop.

Skipped without CUDA. Every check of the former ``benchmarks/gpu_check.py``, its
tolerances as assertions (TF32 off):

- every cell family with lengths, both kernels (routed and forced loop), against cuDNN on a
  packed input;
- every extra alone and all together (2 layers, bidirectional, lengths): the fused BPTT
  against the reference loop, same seed hence the same masks, float32 and float64;
- float64 ``gradcheck`` of each family with every extra (masks fixed by reseeding);
- ``torch.autocast`` in fp16 and bf16: layers with extras match float32, gradients finite;
- the time loops replayed as CUDA graphs against the same loops launched eagerly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any, cast

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.nn import cuda_graphs, force_loop

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TOL = 1e-4  # float32 on GPU: cuDNN and the loop sum in different orders
# Fused BPTT vs reference loop, relative norm of the difference: float64 shows they compute
# the same function; float32 differences are rounding.
RELATIVE_TOL = {torch.float32: 1e-4, torch.float64: 1e-10}
GRAPH_TOL = 1e-6  # graphed vs eager: the same kernels, replayed
LENGTHS = [20, 13, 7, 1]

VARIANTS: list[tuple[str, type[nn.Module], type[nn.Module], dict[str, Any]]] = [
    ("rnn", rnnlab.RNN, nn.RNN, {}),
    ("lstm", rnnlab.LSTM, nn.LSTM, {}),
    ("lstm-proj", rnnlab.LSTM, nn.LSTM, {"proj_size": 16}),
    ("gru", rnnlab.GRU, nn.GRU, {}),
]
EXTRAS: list[dict[str, Any]] = [
    {"layer_norm": True},
    {"recurrent_dropout": 0.3},
    {"zoneout": 0.2},
    {"weight_drop": 0.5},
    {"layer_norm": True, "recurrent_dropout": 0.3, "zoneout": 0.2, "weight_drop": 0.5},
]
FAMILIES: list[tuple[str, type[nn.Module], dict[str, Any]]] = [
    ("rnn", rnnlab.RNN, {}),
    ("rnn-relu", rnnlab.RNN, {"nonlinearity": "relu"}),
    ("lstm", rnnlab.LSTM, {}),
    ("lstm-proj", rnnlab.LSTM, {"proj_size": 16}),
    ("gru", rnnlab.GRU, {}),
]
DEVICE = torch.device("cuda")


@pytest.fixture(autouse=True)
def _no_tf32() -> Iterator[None]:
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _seeded_run(layer: nn.Module, x: Tensor, lengths: Tensor | None, seed: int) -> Tensor:
    torch.manual_seed(seed)  # seeds the GPU's generator too: the same masks every call
    out, _ = layer(x, lengths=lengths)
    return cast(Tensor, out)


def _relative(got: Tensor, want: Tensor) -> float:
    """``|got - want| / |want|`` (Frobenius norms)."""
    return float((got - want).norm() / want.norm().clamp_min(1e-30))


def _label(extra: dict[str, Any]) -> str:
    return "+".join(extra) if len(extra) == 1 else "all"


@pytest.mark.parametrize("path", ["routed", "loop"])
@pytest.mark.parametrize(("ours_cls", "torch_cls", "options"), [v[1:] for v in VARIANTS],
                         ids=[v[0] for v in VARIANTS])  # fmt: skip
def test_layers_match_cudnn_with_lengths(
    ours_cls: type[nn.Module], torch_cls: type[nn.Module], options: dict[str, Any], path: str
) -> None:
    torch.manual_seed(0)
    make = {"num_layers": 2, "bidirectional": True, "batch_first": True, **options}
    ours = ours_cls(8, 32, **make).to(DEVICE)
    theirs = torch_cls(8, 32, **make).to(DEVICE)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 20, 8, device=DEVICE)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    lengths = torch.tensor(LENGTHS)
    with force_loop() if path == "loop" else nullcontext():
        out_ours, _ = ours(x_ours, lengths=lengths)
    packed = pack_padded_sequence(x_theirs, lengths, batch_first=True, enforce_sorted=False)
    out_p, _ = theirs(packed)
    out_theirs, _ = pad_packed_sequence(out_p, batch_first=True, total_length=20)
    weights = torch.randn_like(out_theirs)
    (out_ours * weights).sum().backward()
    (out_theirs * weights).sum().backward()
    assert (out_ours - out_theirs).abs().max().item() <= TOL
    assert (cast(Tensor, x_ours.grad) - cast(Tensor, x_theirs.grad)).abs().max().item() <= TOL
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert (a.grad - b.grad).abs().max().item() <= TOL


@pytest.mark.parametrize("dtype", list(RELATIVE_TOL), ids=str)
@pytest.mark.parametrize("extra", EXTRAS, ids=_label)
@pytest.mark.parametrize(
    ("cls", "options"), [f[1:] for f in FAMILIES], ids=[f[0] for f in FAMILIES]
)
def test_fused_bptt_matches_the_reference_loop(
    cls: type[nn.Module], options: dict[str, Any], extra: dict[str, Any], dtype: torch.dtype
) -> None:
    torch.manual_seed(0)
    layer = cls(8, 32, num_layers=2, bidirectional=True, **options, **extra)
    layer = layer.to(device=DEVICE, dtype=dtype)
    x = torch.randn(20, 4, 8, device=DEVICE, dtype=dtype)
    lengths = torch.tensor(LENGTHS)
    weights: Tensor | None = None
    results = []
    for forced in (nullcontext(), force_loop()):
        x_run = x.clone().requires_grad_()
        with forced:
            out = _seeded_run(layer, x_run, lengths, seed=1)
        weights = torch.randn_like(out) if weights is None else weights
        (out * weights).sum().backward()
        grads = [p.grad.clone() for p in layer.parameters() if p.grad is not None]
        results.append((out.detach(), cast(Tensor, x_run.grad), grads))
        layer.zero_grad()
    (out_a, dx_a, dp_a), (out_b, dx_b, dp_b) = results
    tol = RELATIVE_TOL[dtype]  # relative: the loop sums in another order
    assert _relative(out_a, out_b) <= tol
    assert _relative(dx_a, dx_b) <= tol
    assert max(_relative(a, b) for a, b in zip(dp_a, dp_b, strict=True)) <= tol


@pytest.mark.parametrize(
    ("cls", "options"), [f[1:] for f in FAMILIES], ids=[f[0] for f in FAMILIES]
)
def test_gradcheck_float64_with_every_extra(cls: type[nn.Module], options: dict[str, Any]) -> None:
    options = {**options, "proj_size": 2} if "proj_size" in options else options
    layer = cls(3, 4, bidirectional=True, **options, **EXTRAS[-1])
    layer = layer.to(device=DEVICE, dtype=torch.float64)
    x = torch.randn(5, 2, 3, device=DEVICE, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 3])
    assert torch.autograd.gradcheck(
        lambda x: _seeded_run(layer, x, lengths, seed=3), (x,), raise_exception=False
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize(
    ("cls", "options"), [f[1:] for f in FAMILIES], ids=[f[0] for f in FAMILIES]
)
def test_autocast_gives_float32_results(
    cls: type[nn.Module], options: dict[str, Any], dtype: torch.dtype
) -> None:
    torch.manual_seed(0)
    layer = cls(8, 32, num_layers=2, **options, **EXTRAS[-1]).to(DEVICE)
    x = torch.randn(20, 4, 8, device=DEVICE)
    reference = _seeded_run(layer, x, None, seed=5)
    with torch.autocast("cuda", dtype=dtype):
        mixed = _seeded_run(layer, x, None, seed=5)
    mixed.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    assert (mixed.float() - reference).abs().max().item() <= TOL


@pytest.mark.parametrize("extra", [EXTRAS[0], EXTRAS[-1]], ids=_label)
@pytest.mark.parametrize(
    ("cls", "options"), [f[1:] for f in FAMILIES], ids=[f[0] for f in FAMILIES]
)
def test_graphed_loops_match_eager_loops(
    cls: type[nn.Module], options: dict[str, Any], extra: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    torch.manual_seed(0)
    layer = cls(8, 32, num_layers=2, bidirectional=True, **options, **extra).to(DEVICE)
    x = torch.randn(20, 4, 8, device=DEVICE)
    lengths = torch.tensor(LENGTHS)
    runs = []
    for graphs in ("0", "1", "1", "1"):  # eager; then first sighting, capture, replay
        monkeypatch.setenv("RNNLAB_CUDA_GRAPHS", graphs)
        out = _seeded_run(layer, x, lengths, seed=11)
        (out * torch.linspace(-1, 1, out.numel(), device=DEVICE).view_as(out)).sum().backward()
        runs.append((out.detach(), [p.grad.clone() for p in layer.parameters()]))
        layer.zero_grad()
    (out_e, grads_e), *graphed = runs
    worst = max(
        max(_relative(o, out_e), *(_relative(g, e) for g, e in zip(gs, grads_e, strict=True)))
        for o, gs in graphed
    )
    assert cuda_graphs.captured() > 0
    assert worst <= GRAPH_TOL
