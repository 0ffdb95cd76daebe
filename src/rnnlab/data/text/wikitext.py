"""WikiText-2 and WikiText-103 (Merity et al. 2016): their layout, found in a data root.

The tokenized releases unpack to one folder per corpus::

    <root>/wikitext-2/wiki.train.tokens  wiki.valid.tokens  wiki.test.tokens
    <root>/wikitext-103/wiki.train.tokens ...

(``<root>/wikitext-2/wikitext-2/...``, as the release's zip nests it, is found too.) The text
is already tokenized: words and punctuation separated by spaces, rare words replaced by
``<unk>``, number and hyphen separators split off as ``@-@``, ``@,@`` and ``@.@`` tokens,
section headings as `` = Title = `` lines, blank lines between paragraphs. It is read at the
``word`` level as PTB is (:mod:`rnnlab.data.text.tokens`): every line, blank ones included,
ends in ``<eos>`` (the convention of AWD-LSTM's and pytorch/examples' readers), ``@-@`` is a
word like any other and the corpus's own ``<unk>`` is the vocabulary's unknown token.
WikiText-2 has 2,088,628 training tokens and a vocabulary of 33,278 words.

The data is not shipped, and rnnlab pins no download for it (its sha256 sums are not in the
catalog of :mod:`rnnlab.data.datasets`): download the tokenized release yourself and unpack
it under a data root (``$RNNLAB_DATA``, the ``data.root`` setting, or the cache). Any
folder in this layout also works as ``data.path``.

Example (the files in ``$RNNLAB_DATA/wikitext-2``)::

    corpus = load_corpus(locate_wikitext("wikitext-2"), "word")
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnlab.data.datasets.locating import search_roots
from rnnlab.data.text.errors import CorpusError

WIKITEXT: dict[str, str] = {
    "wikitext-2": "WikiText-2 (2.1M training tokens, 33,278 words)",
    "wikitext-103": "WikiText-103 (103M training tokens, 267,735 words)",
}
"""The WikiText corpora by name, with what they are."""

FILES = ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")
"""The three split files of a tokenized WikiText folder."""

__all__ = ["FILES", "WIKITEXT", "is_wikitext", "locate_wikitext", "wikitext_folder"]


def is_wikitext(name: str | None) -> bool:
    """Whether ``name`` is a WikiText corpus name (``wikitext-2``, ``wikitext-103``)."""
    return name in WIKITEXT


def wikitext_folder(folder: str | os.PathLike[str], name: str) -> Path | None:
    """``folder`` (or ``folder/<name>``, the zip's nesting) when it holds the three files."""
    for candidate in (Path(folder), Path(folder) / name):
        if all((candidate / f).is_file() for f in FILES):
            return candidate
    return None


def locate_wikitext(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of a WikiText corpus under the data roots (``root``, else ``$RNNLAB_DATA``,
    else the cache).

    Raises:
        CorpusError: not a WikiText name, or no folder with the three files in any root (the
            message lists where it looked and how to get the data).
    """
    if name not in WIKITEXT:
        raise CorpusError(f"unknown WikiText corpus {name!r}; known: {', '.join(WIKITEXT)}")
    looked = []
    for base in search_roots(root):
        found = wikitext_folder(base / name, name)
        if found is not None:
            return found
        looked.append(str(base / name))
    raise CorpusError(
        f"{WIKITEXT[name]} not found: no folder with {', '.join(FILES)} in "
        f"{'; '.join(looked)}. The data is not shipped: download the tokenized release "
        f"(e.g. {name}-v1.zip), unpack it to <data root>/{name}/ and set RNNLAB_DATA or "
        "data.root (or point data.path at the folder)"
    )
