"""The contract for a greeting's name, shared by the API and the consumer. Pure: no I/O.

A name is refused when it is empty or blank, longer than ``MAX_NAME_LENGTH``
code points, holds a character that corrupts logs, terminals or the text
around it, or has nothing a reader could see. Refused characters:

- Cc control characters (NUL, newline, ESC, DEL, C1 controls);
- Cs surrogates and Cn code points (unassigned in Python's Unicode
  database, and the non-characters such as U+FFFF);
- Zl / Zp, U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR, which
  break lines like a newline does;
- the bidirectional embedding, override and isolate controls U+202A..U+202E
  and U+2066..U+2069, which reorder the text that follows them (spoofing).

Other format characters (Cf) are allowed next to visible ones: the
zero-width joiner builds emoji sequences ("👨‍👩‍👧"), ZWNJ is needed in
Persian and Indic scripts, and tag characters spell subdivision flags. A
name made only of spaces, format characters, combining marks and the
blank "filler" letters (U+3164, U+2800, U+115F, U+1160, U+FFA0) is refused
as having no visible character.

Positions in messages are 0-based indexes of code points.
"""

from __future__ import annotations

import unicodedata

# Measured in Unicode code points, not bytes: a 256-character name in any
# script is accepted (at most 1 KiB of UTF-8).
MAX_NAME_LENGTH = 256

# Letters and symbols that render as blank space although their category says otherwise.
BLANK_FILLERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")

# Embedding/override (LRE RLE PDF LRO RLO) and isolate (LRI RLI FSI PDI) controls.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_REFUSED_CATEGORIES = {
    "Cc": "control character",
    "Cs": "surrogate code point",
    "Cn": "unassigned code point or non-character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
}


def name_problem(name: str) -> str | None:
    """Why ``name`` is refused, as a sentence for the caller, or None if it is acceptable."""
    if not name.strip():
        return "name must not be empty or only whitespace"
    if len(name) > MAX_NAME_LENGTH:
        return f"name is {len(name)} code points long; the maximum is {MAX_NAME_LENGTH}"
    visible = False
    for position, char in enumerate(name):
        category = unicodedata.category(char)
        what = _REFUSED_CATEGORIES.get(category)
        if what is None and char in BIDI_CONTROLS:
            what = "bidirectional control character"
        if what is not None:
            return f"name contains {what} U+{ord(char):04X} at position {position}"
        if not visible:
            visible = category[0] not in "ZM" and category != "Cf" and char not in BLANK_FILLERS
    if not visible:
        return f"name has no visible character (U+{ord(name[0]):04X} at position 0 is invisible)"
    return None
