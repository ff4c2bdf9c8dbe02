from __future__ import annotations

import pytest

from hello_api.validation import MAX_NAME_LENGTH, validate_name
from hello_core.errors import ValidationError


@pytest.mark.parametrize(
    "name",
    ["Alice", "Zoë", "李小龙", "a" * MAX_NAME_LENGTH, " padded ", "emoji 👋", "tab-free\u00a0nbsp"],
)
def test_accepts_printable_names_up_to_the_maximum(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", " ", "\u3000", "   "])
def test_refuses_empty_and_blank_names(name: str) -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        validate_name(name)


def test_refuses_names_over_the_maximum_and_says_both_lengths() -> None:
    with pytest.raises(ValidationError) as info:
        validate_name("é" * (MAX_NAME_LENGTH + 1))
    assert str(info.value) == "name is 257 characters long; the maximum is 256"


@pytest.mark.parametrize(
    ("name", "code", "position"),
    [
        ("a\x00b", "U+0000", 1),
        ("line\nbreak", "U+000A", 4),
        ("\x1b[31mred", "U+001B", 0),
        ("x\x7f", "U+007F", 1),
    ],
)
def test_refuses_control_characters_naming_code_and_position(
    name: str, code: str, position: int
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_name(name)
    assert str(info.value) == f"name contains control character {code} at position {position}"
