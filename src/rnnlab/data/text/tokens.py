"""Token levels and the text <-> token conversions: :func:`tokenize` and :func:`detokenize`.

Token levels (``level=``):

- ``"word"``: each line is split on whitespace and ``<eos>`` appended (PTB: one sentence per
  line, rare words already ``<unk>``). ``" the cat \\n"`` -> ``["the", "cat", "<eos>"]``.
- ``"char"``: every Unicode character is a token, newlines included; no ``<eos>``
  (Tiny Shakespeare). ``"Hi!\\n"`` -> ``["H", "i", "!", "\\n"]``.
- ``"char-spaced"``: Mikolov's PTB-char format: each line holds single characters separated by
  spaces, ``_`` marks a word boundary, and ``<eos>`` is appended per line. A word-level
  ``<unk>`` is spelled ``< u n k >`` there, so it is five symbols, not the unknown token.
  ``" a _ c a t \\n "`` -> ``["a", "_", "c", "a", "t", "<eos>"]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Level = Literal["word", "char", "char-spaced"]
LEVELS: tuple[str, ...] = ("word", "char", "char-spaced")
UNK = "<unk>"
EOS = "<eos>"


def check_level(level: str) -> None:
    """Raise ``ValueError`` unless ``level`` is one of :data:`LEVELS`."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def uses_eos(level: str) -> bool:
    """Whether the level appends ``<eos>`` per line (``word`` and ``char-spaced``)."""
    return level != "char"


def tokenize(text: str, level: Level) -> list[str]:
    """Split text into tokens at the given level (see the module docstring)."""
    check_level(level)
    if level == "char":
        return list(text)
    lines = text.split("\n")
    if lines and not lines[-1].strip():
        lines.pop()  # the piece after the final newline (PTB-char ends in "\n ")
    tokens: list[str] = []
    for line in lines:
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


def detokenize(tokens: Iterable[str], level: Level) -> str:
    """Tokens back to readable text: words joined by spaces, ``<eos>`` as a newline.

    For ``char-spaced``, ``_`` becomes a space. ``detokenize(tokenize(t, "char"), "char") == t``.
    """
    check_level(level)
    if level == "char":
        return "".join(tokens)
    if level == "char-spaced":
        return "".join("\n" if t == EOS else " " if t == "_" else t for t in tokens)
    lines: list[list[str]] = [[]]
    for t in tokens:
        if t == EOS:
            lines.append([])
        else:
            lines[-1].append(t)
    return "\n".join(" ".join(words) for words in lines)
