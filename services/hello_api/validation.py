"""Validation of SayHello input. Pure: no I/O."""

from __future__ import annotations

import unicodedata

from hello_core.errors import ValidationError

# Measured in Unicode code points, not bytes: a 256-character name in any
# script is accepted (at most 1 KiB of UTF-8).
MAX_NAME_LENGTH = 256


def validate_name(name: str) -> str:
    """Return ``name`` unchanged if it is acceptable, else raise ValidationError.

    Refused: empty or whitespace-only names, names longer than
    ``MAX_NAME_LENGTH`` code points, and names holding control characters
    (Unicode category Cc, e.g. NUL, newline, ESC), which would corrupt logs
    and terminals downstream.
    """
    if not name.strip():
        raise ValidationError("name must not be empty or only whitespace")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"name is {len(name)} characters long; the maximum is {MAX_NAME_LENGTH}"
        )
    for position, char in enumerate(name):
        if unicodedata.category(char) == "Cc":
            raise ValidationError(
                f"name contains control character U+{ord(char):04X} at position {position}"
            )
    return name
