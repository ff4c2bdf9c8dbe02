from __future__ import annotations

import pytest

from hello_api.validation import MAX_NAME_LENGTH, validate_name
from hello_core.errors import ValidationError


@pytest.mark.parametrize("name", ["Alice", "a" * MAX_NAME_LENGTH, "👨\u200d👩\u200d👧"])
def test_returns_acceptable_names_unchanged(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "name must not be empty or only whitespace"),
        ("é" * (MAX_NAME_LENGTH + 1), "name is 257 code points long; the maximum is 256"),
        ("bell\x07", "name contains control character U+0007 at position 4"),
        ("abc\u202efed", "name contains bidirectional control character U+202E at position 3"),
        ("\u200b", "name has no visible character (U+200B at position 0 is invisible)"),
    ],
)
def test_raises_validation_error_with_the_core_reason(name: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_name(name)
    assert str(info.value) == message
