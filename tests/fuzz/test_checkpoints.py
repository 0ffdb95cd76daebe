"""Fuzzed checkpoints for ``rnnlab evaluate RUN`` and ``rnnlab train --resume RUN``: the run's
``best.pt`` and/or ``last.pt`` truncated, bit-flipped, or replaced by a foreign file (another
task's checkpoint, a pickled object, a dict of random tensors, the real payload with keys
removed or changed, JSON, random bytes, an empty file). Each case must exit 0 or 2 with no
traceback and a one-line error, and leave the run directory byte-identical (a resume that
succeeds continues the run, so it may write it)."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.helpers import check, copy_run, fuzz, sets, snapshot

NAMES = ("best.pt", "last.pt")


def saved(payload: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


@st.composite
def replacements(
    draw: st.DrawFn, original: bytes, foreign: bytes, payload_edits: bool = True
) -> bytes:
    """New bytes for a checkpoint whose bytes were ``original``; ``payload_edits``: also the
    real payload with a key removed or changed (not for resume: see test_findings.py)."""
    kinds = ["truncate", "truncate", "flip", "flip", "foreign", "pickle", "tensors", "json",
             "bytes", "empty"]  # fmt: skip
    kind = draw(st.sampled_from([*kinds, *(["payload"] * 2 if payload_edits else [])]))
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original) - 1))]
    if kind == "flip":
        changed = bytearray(original)
        for _ in range(draw(st.integers(1, 8))):
            bit = draw(st.integers(0, 8 * len(changed) - 1))
            changed[bit // 8] ^= 1 << (bit % 8)
        return bytes(changed)
    if kind == "foreign":
        return foreign
    if kind == "pickle":
        return pickle.dumps(draw(st.sampled_from([{"a": 1}, [1, 2], "text", None, 3.5])))
    if kind == "tensors":
        shapes = st.lists(st.integers(0, 4), max_size=3).map(tuple)
        return saved({draw(st.text(max_size=6)): torch.randn(draw(shapes)) for _ in range(3)})
    if kind == "payload":
        payload = torch.load(io.BytesIO(original), weights_only=True)
        key = draw(st.sampled_from(sorted(payload)))
        if draw(st.booleans()):
            del payload[key]
        else:
            payload[key] = draw(
                st.sampled_from(["x", 7, None, [], {}, torch.zeros(2), {"weight": torch.ones(1)}])
            )
        return saved(payload)
    if kind == "json":
        return b'{"format": "rnnlab", "model": {}}'
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    return b""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-checkpoints")


@fuzz(40)
@given(
    data=st.data(),
    targets=st.sampled_from([("best.pt",), ("last.pt",), NAMES]),
    command=st.sampled_from(["evaluate", "evaluate-last", "evaluate-valid", "resume"]),
)
def test_damaged_checkpoints(
    root: Path,
    adding_run: Path,
    language_run: Path,
    data: st.DataObject,
    targets: tuple[str, ...],
    command: str,
) -> None:
    run = copy_run(adding_run, root)
    foreign = (language_run / "checkpoints" / "best.pt").read_bytes()
    for name in targets:
        path = run / "checkpoints" / name
        new = replacements(path.read_bytes(), foreign, payload_edits=command != "resume")
        path.write_bytes(data.draw(new, label=name))
    before = snapshot(run)
    if command == "resume":
        args = ["train", "--resume", run, "--quiet", *sets("train.epochs=2")]
    else:
        args = ["evaluate", run]
        args += ["--checkpoint", "last"] if command == "evaluate-last" else []
        args += ["--split", "valid"] if command == "evaluate-valid" else []
    check(args, before, may_change=lambda path: command == "resume")
