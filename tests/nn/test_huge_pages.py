"""rnnlab.nn.huge_pages: which buffers are advised, over which range; contents unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import rnnlab
from rnnlab.nn import huge_pages, native


@pytest.fixture
def advice(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int, int]]]:
    """Records madvise's calls instead of making them."""
    calls: list[tuple[int, int, int]] = []

    def record(start: int, length: int, flag: int) -> int:
        calls.append((start, length, flag))
        return 0

    monkeypatch.setattr(huge_pages, "_madvise", lambda: record)
    yield calls


def test_a_large_buffer_is_advised_over_its_aligned_interior(
    advice: list[tuple[int, int, int]],
) -> None:
    tensor = torch.empty(3 * huge_pages.HUGE_PAGE // 4 + 1000)  # float32: 3 MiB + 4000 bytes
    assert huge_pages.advise(tensor) is tensor
    start = tensor.untyped_storage().data_ptr()
    end = start + tensor.untyped_storage().nbytes()
    [(first, length, flag)] = advice
    assert flag == huge_pages.MADV_HUGEPAGE
    assert first % huge_pages.HUGE_PAGE == 0 and length % huge_pages.HUGE_PAGE == 0
    assert start <= first < start + huge_pages.HUGE_PAGE  # the first aligned address inside
    assert first + length <= end < first + length + huge_pages.HUGE_PAGE  # and the last


def test_small_and_non_cpu_buffers_are_left_alone(advice: list[tuple[int, int, int]]) -> None:
    huge_pages.advise(torch.empty(huge_pages.MIN_BYTES // 4 - 1))
    huge_pages.advise(torch.empty(huge_pages.MIN_BYTES, device="meta"))
    assert advice == []


def test_the_helpers_match_torch() -> None:
    gen = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(6, 300, 40, generator=gen), torch.randn(900, 40, generator=gen),
               torch.randn(40, 900, generator=gen))  # fmt: skip
    assert torch.equal(huge_pages.projection(x, w), torch.matmul(x, w.t()))
    assert torch.equal(huge_pages.product(x, b), torch.matmul(x, b))
    like = huge_pages.empty_like(x)
    assert like.shape == x.shape and like.dtype == x.dtype
    assert huge_pages.new_empty(x.double(), 2, 3).dtype == torch.float64


def test_the_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNLAB_HUGE_PAGES", "0")
    huge_pages._madvise.cache_clear()
    try:
        assert not huge_pages.active()
    finally:
        monkeypatch.delenv("RNNLAB_HUGE_PAGES")
        huge_pages._madvise.cache_clear()


def test_a_real_advice_keeps_the_contents() -> None:
    tensor = huge_pages.empty_like(torch.empty(2 * huge_pages.MIN_BYTES // 4))
    tensor.copy_(torch.arange(tensor.numel(), dtype=torch.float32))
    assert torch.equal(huge_pages.advise(tensor), torch.arange(tensor.numel(), dtype=torch.float32))


def test_explain_says_whether_buffers_ask_for_huge_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    if not native.built():
        pytest.skip(f"native loops {native.status()}")
    layer = rnnlab.GRU(4, 8, layer_norm=True)
    monkeypatch.setattr(huge_pages, "_madvise", lambda: None)
    assert "huge pages" not in layer.explain()
    monkeypatch.setattr(huge_pages, "_madvise", lambda: print)
    assert "ask for transparent huge pages" in layer.explain()
