"""Durations written the way people write them: ``"90s"``, ``"30m"``, ``"1h30m"``, ``"2h"``.

A duration is one or more whole numbers, each followed by its unit, in the order hours
(``h``), minutes (``m``), seconds (``s``), each unit at most once: ``"2h"``, ``"45m"``,
``"1h30m"``, ``"1h0m30s"``, ``"90s"``. Anything else (a bare number, ``"1.5h"``, ``"30 min"``,
zero) is refused with one message that shows the accepted forms.
"""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
FORMS = "a duration such as '90s', '30m', '1h30m' or '2h'"


def parse_duration(value: Any) -> float:
    """Seconds in ``value``, a duration string (see the module docstring).

    Raises:
        ValueError: ``value`` is not such a string, or it is zero.

    Example:
        >>> parse_duration("1h30m"), parse_duration("90s")
        (5400.0, 90.0)
    """
    text = value.strip().lower() if isinstance(value, str) else None
    match = _DURATION.fullmatch(text) if text else None
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"expected {FORMS}")
    parts = {unit: int(number or 0) for unit, number in match.groupdict().items()}
    seconds = float(parts["h"] * 3600 + parts["m"] * 60 + parts["s"])
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, {FORMS}")
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` as ``"1h30m"``, ``"2m5s"``, ``"12.3s"`` (for messages)."""
    if seconds < 60:
        return f"{seconds:.3g}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs else "")
