"""Names to greet: the request payloads the generator sends.

Every generator returns names the API accepts (1 to 256 characters, not
blank, no control characters), so failures in a report come from the
server, not from the payload.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import Literal

NameKind = Literal["fixed", "sequence", "random"]

MAX_NAME_CHARS = 256
_ALPHABET = string.ascii_letters + string.digits


def name_generator(
    kind: NameKind, *, prefix: str = "load", length: int = 12, seed: int = 0
) -> Callable[[int], str]:
    """A function from the call's schedule index to the name it sends.

    ``fixed`` always sends ``prefix``; ``sequence`` sends ``prefix-<index>``;
    ``random`` sends ``length`` letters and digits drawn from a generator seeded
    with ``seed`` and the index, so every process produces the same names
    for the same indexes.
    """
    if not prefix.strip():
        raise ValueError("the name prefix must not be blank")
    if not 1 <= length <= MAX_NAME_CHARS:
        raise ValueError(f"name length must be 1..{MAX_NAME_CHARS}")
    if kind == "fixed":
        return lambda index: prefix[:MAX_NAME_CHARS]
    if kind == "sequence":
        return lambda index: f"{prefix}-{index:06d}"[:MAX_NAME_CHARS]
    if kind == "random":

        def random_name(index: int) -> str:
            rng = random.Random(seed * 1_000_003 + index)  # noqa: S311 - test data, not secrets
            return "".join(rng.choices(_ALPHABET, k=length))

        return random_name
    raise ValueError(f"unknown name generator {kind!r}")
