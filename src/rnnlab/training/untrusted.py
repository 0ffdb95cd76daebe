"""Telling a checkpoint that holds pickled Python objects from a damaged one.

Checkpoints are read with ``torch.load(weights_only=True)``, which refuses any pickled
object other than tensors and plain values: loading such an object can run arbitrary code.
A refused file is either damaged (truncated, corrupted) or well formed but holding objects
(a class instance, a function, an ``os.system`` call hidden in a ``__reduce__``): the user
must hear which. :func:`pickled_object` answers from torch's error, or, where torch stopped
before it reached the object (pickle protocols above 2), by reading the pickle's opcodes
with :mod:`pickletools`, which parses without executing or importing anything.

Example:
    >>> import pickle, io, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.pt"
    >>> _ = path.write_bytes(pickle.dumps({"f": print}, protocol=4))
    >>> pickled_object(path, pickle.UnpicklingError("Unsupported operand 149"))
    'builtins.print'
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
import sys
import zipfile
from pathlib import Path

# "Unsupported global: GLOBAL mod.name was not ..." / "unsupported GLOBAL mod.name whose ..."
_REFUSED = re.compile(r"unsupported (?:global: )?GLOBAL (?P<name>[\w.]+)", re.IGNORECASE)
# What torch.save itself pickles besides plain values: never "objects" of the user's.
_TORCH_OWN = ("torch.", "collections.OrderedDict")
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING"}
_STRING_OPS |= {"BINSTRING", "SHORT_BINSTRING"}
_MAX_PICKLES = 8  # the legacy torch format is a few pickles one after another


def _whole(name: str) -> bool:
    """Whether ``module.attr`` can be a real name rather than one cut by truncation: a
    loaded module (never imported here: that would run code) must have the attribute."""
    module, _, attribute = name.rpartition(".")
    loaded = sys.modules.get(module)
    return loaded is None or not attribute or hasattr(loaded, attribute)


def _pickle_bytes(path: Path) -> bytes:
    """The pickled part of ``path``: ``data.pkl`` of a torch zip archive, else the file."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            return archive.read(names[0]) if names else b""
    return path.read_bytes()


def _globals_in(data: bytes) -> list[str] | None:
    """Every global (``module.name``) the pickles in ``data`` would load, or ``None`` when
    they are not well formed (cut short or corrupted)."""
    stream = io.BytesIO(data)
    found: list[str] = []
    try:
        for _ in range(_MAX_PICKLES):
            strings: list[str] = []
            for opcode, arg, _pos in pickletools.genops(stream):
                if opcode.name in _STRING_OPS:
                    strings.append(str(arg))
                elif opcode.name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL":
                    found.append(".".join(strings[-2:]) if len(strings) >= 2 else "an object")
            if stream.tell() >= len(data):
                return found
    except (ValueError, EOFError, UnicodeDecodeError, pickle.UnpicklingError):
        return None
    return found


def pickled_object(path: Path, err: Exception) -> str | None:
    """The pickled Python object (``module.name``) that made ``torch.load`` with
    ``weights_only=True`` refuse ``path``, or ``None`` when the file is damaged instead.

    Args:
        path: the file torch could not load.
        err: the error it raised.
    """
    if not isinstance(err, pickle.UnpicklingError):
        return None
    match = _REFUSED.search(str(err))
    if match is not None:
        return match.group("name") if _whole(match.group("name")) else None
    try:
        names = _globals_in(_pickle_bytes(path))
    except Exception:  # a damaged archive fails in many ways (bad names, CRC, zlib): damaged
        return None
    foreign = [n for n in names or [] if not n.startswith(_TORCH_OWN) and _whole(n)]
    return foreign[0] if foreign else None
