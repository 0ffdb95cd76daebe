"""Where rnnlab keeps what it can rebuild: downloaded data sets and the native kernel build."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$RNNLAB_CACHE``, else ``~/.cache/rnnlab``.

    Example:
        >>> import os
        >>> os.environ["RNNLAB_CACHE"] = "/tmp/rnnlab-cache"
        >>> str(cache_dir())
        '/tmp/rnnlab-cache'
        >>> del os.environ["RNNLAB_CACHE"]
    """
    env = os.environ.get("RNNLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnnlab"
