"""Parsing of the human-friendly quantities the CLI accepts."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from ``"250ms"``, ``"3s"``, ``"2m"``, ``"1h"`` or a bare number of seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 500ms, 3s, 2m or 1h")
    number, unit = match.groups()
    return float(number) * _SECONDS_PER_UNIT[unit or "s"]
