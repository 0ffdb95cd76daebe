"""Config files as editors and users write them: byte-order marks, other encodings, binary
files, and numbers that are not finite."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from rnnlab import config as cfg
from rnnlab.errors import ConfigError

ADDING = '[task]\nname = "adding"\n[train]\nepochs = 1\n'


@pytest.mark.parametrize(
    ("prefix", "encoding"),
    [(b"", "utf-8"), (codecs.BOM_UTF8, "utf-8"), (b"", "utf-16"), (b"", "utf-16-be")],
    ids=["utf-8", "utf-8 with bom", "utf-16 le with bom", "utf-16 be with bom"],
)
def test_text_configs_load_whatever_the_marked_encoding(
    tmp_path: Path, prefix: bytes, encoding: str
) -> None:
    body = ADDING.encode(encoding)
    if encoding == "utf-16-be":
        body = codecs.BOM_UTF16_BE + body
    path = tmp_path / "c.toml"
    path.write_bytes(prefix + body)
    assert cfg.load(path).task.name == "adding"


def test_a_binary_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "weights.toml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"weights\.toml is not a text file in UTF-8") as err:
        cfg.load(path)
    assert "\n" not in str(err.value)


def test_nul_bytes_in_valid_utf8_are_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(ADDING.encode() + b"\x00\x00")
    with pytest.raises(ConfigError, match="is a binary file"):
        cfg.load(path)


def test_latin1_text_is_refused_with_the_encoding_to_use(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes('[task]\nname = "adding"  # café\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="save the config as UTF-8 TOML"):
        cfg.load(path)


@pytest.mark.parametrize(
    "override",
    [
        "train.lr=inf",
        "train.lr=nan",
        "train.lr=-inf",
        "model.dropout=nan",
        "data.valid_fraction=nan",
    ],
)
def test_non_finite_numbers_are_refused_at_validation(override: str) -> None:
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key}: Input should be a finite number"):
        cfg.load("mackey-glass" if key.startswith("data.") else "adding", [override])
