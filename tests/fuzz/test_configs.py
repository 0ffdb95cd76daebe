"""Fuzzed configs for ``rnnlab train``: generated TOML documents (known and random keys,
values of every TOML type, non-finite and out-of-range numbers) in many encodings, with byte
mutations, and generated ``--set key=value`` overrides. Each case must exit 0 or 2 with no
traceback and a one-line error, and leave the config file (and anything else already
written) byte-identical."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import assume, given
from hypothesis import strategies as st
from tests.fuzz.conftest import ADDING
from tests.fuzz.helpers import check, fuzz, scratch, sets, snapshot

from rnnlab import config as cfg
from rnnlab.config.files import parse_value

BASE: dict[str, Any] = cfg.load("adding", ADDING).to_dict()


def dotted(raw: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in raw.items():
        name = f"{prefix}{key}"
        keys += dotted(value, f"{name}.") if isinstance(value, dict) else [name]
    return keys


KNOWN = dotted(BASE)
SECTIONS = [key for key, value in BASE.items() if isinstance(value, dict)]

names = st.one_of(
    st.sampled_from(KNOWN).map(lambda key: key.rsplit(".", 1)[-1]),
    st.text(min_size=1, max_size=8),
)
# numbers stay small enough to train in a moment, or are far out of any range
ints = st.one_of(st.integers(-3, 64), st.sampled_from([0, 2**31, 2**63 - 1, -(2**63), 10**30]))
floats = st.one_of(
    st.floats(-1e3, 1e3),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -0.0, 5e-324, 1e-300]),
)
scalars = st.one_of(
    ints,
    floats,
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["lstm", "gru", "rnn", "adam", "sgd", "cpu", "cuda", "meta", "adding"]),
    st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 1, 1)),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """The tiny adding config with 1-4 random edits: set a known or new key to any value,
    delete a key, replace a section by a value, add a section."""
    raw = cfg.files._deep_copy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "new", "delete", "section", "top"]))
        if op in ("set", "delete"):
            *parents, leaf = draw(st.sampled_from(KNOWN)).split(".")
            node = raw
            for part in parents:
                child = node.get(part)
                if not isinstance(child, dict):
                    break
                node = child
            else:
                if op == "set":
                    node[leaf] = draw(values)
                else:
                    node.pop(leaf, None)
        elif op == "new":
            section = raw.setdefault(draw(st.sampled_from(SECTIONS)), {})
            if isinstance(section, dict):
                section[draw(names)] = draw(values)
        elif op == "section":
            raw[draw(st.sampled_from(SECTIONS))] = draw(scalars)
        else:
            raw[draw(names)] = draw(values)
    return raw


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"]


@st.composite
def config_bytes(draw: st.DrawFn) -> bytes:
    """A generated config file: TOML of :func:`documents` or random text, in a random
    encoding, maybe truncated, with bytes inserted or flipped, or random bytes."""
    kind = draw(st.sampled_from(["toml", "toml", "toml", "text", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    text = tomli_w.dumps(draw(documents())) if kind == "toml" else draw(st.text(max_size=200))
    data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    mutation = draw(st.sampled_from(["none", "none", "truncate", "insert", "flip"]))
    if mutation != "none" and data:
        at = draw(st.integers(0, len(data) - 1))
        if mutation == "truncate":
            data = data[:at]
        elif mutation == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        else:
            data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
    return data


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-configs")


@fuzz(60)
@given(data=config_bytes(), suffix=st.sampled_from([".toml", ".TOML", ".txt", ""]))
def test_generated_config_files(root: Path, data: bytes, suffix: str) -> None:
    case = scratch(root)
    path = case / f"config{suffix}"
    path.write_bytes(data)
    before = snapshot(case)
    args = ["train", path, "--quiet", *sets("train.epochs=1"), "--run-dir", case / "run"]
    result = check(args, before)
    if result.exit_code == 0:
        assert (case / "run" / "config.toml").is_file()


def magnitude_ok(value: Any) -> bool:
    """False for numbers big enough to make a case slow yet small enough to be accepted."""
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return not 4096 < abs(value) < 1e15
    if isinstance(value, list):
        return all(magnitude_ok(item) for item in value)
    if isinstance(value, dict):
        return all(magnitude_ok(item) for item in value.values())
    return True


literals = st.sampled_from(
    ["inf", "-inf", "nan", "1e999", "0x10", "[1,", "{a=1}", "none", "null", "''", '"\\u0000"',
     "1979-05-27", "true", "[[1], [2]]", "{}", "[]", " ", "\u00e9", "1_0", "+1", "07"]
)  # fmt: skip
override_values = st.one_of(
    literals,
    st.text(max_size=10),
    scalars.map(lambda v: tomli_w.dumps({"v": v})[4:].strip()),
)
override_keys = st.one_of(
    st.sampled_from(KNOWN),
    st.lists(names, min_size=1, max_size=3).map(".".join),
    st.text(max_size=10),
)
overrides = st.one_of(
    st.tuples(override_keys, st.sampled_from(["=", "=", " = ", ""]), override_values).map("".join),
    st.text(max_size=16),
)


@fuzz(60)
@given(items=st.lists(overrides, min_size=1, max_size=3))
def test_generated_overrides(root: Path, items: list[str]) -> None:
    assume(all(magnitude_ok(parse_value(item.partition("=")[2])) for item in items))
    case = scratch(root)
    args = ["train", "adding", "--quiet", *sets(*ADDING, *items, "train.epochs=1")]
    check([*args, "--run-dir", case / "run"], snapshot(case))
