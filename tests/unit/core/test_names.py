"""The name contract shared by the API and the consumer."""

from __future__ import annotations

import pytest

from hello_core.names import MAX_NAME_LENGTH, name_problem


@pytest.mark.parametrize(
    "name",
    [
        "Alice",
        "Zoë",
        "李小龙",
        "a" * MAX_NAME_LENGTH,
        " padded ",
        "emoji 👋",
        "tab-free\u00a0nbsp",
        "👨\u200d👩\u200d👧",  # family: ZWJ joins the emoji
        "e\u0301",  # e + combining acute accent
        "می\u200cخواهم",  # Persian needs ZWNJ
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # flag of Scotland
    ],
)
def test_accepts_visible_names_including_joined_emoji(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", " ", "\u3000", "   ", "\u2028"])
def test_refuses_empty_and_blank_names(name: str) -> None:
    assert name_problem(name) == "name must not be empty or only whitespace"


def test_refuses_names_over_the_maximum_and_says_both_lengths() -> None:
    assert name_problem("é" * (MAX_NAME_LENGTH + 1)) == (
        "name is 257 code points long; the maximum is 256"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a\x00b", "name contains control character U+0000 at position 1"),
        ("line\nbreak", "name contains control character U+000A at position 4"),
        ("\x1b[31mred", "name contains control character U+001B at position 0"),
        ("x\x7f", "name contains control character U+007F at position 1"),
        ("a\ud800", "name contains surrogate code point U+D800 at position 1"),
        ("ab\uffff", "name contains unassigned code point or non-character U+FFFF at position 2"),
        (
            "\U0010fffe",
            "name contains unassigned code point or non-character U+10FFFE at position 0",
        ),
        ("one\u2028two", "name contains line separator U+2028 at position 3"),
        ("one\u2029two", "name contains paragraph separator U+2029 at position 3"),
        ("abc\u202efed", "name contains bidirectional control character U+202E at position 3"),
        ("\u202aab", "name contains bidirectional control character U+202A at position 0"),
        ("a\u2066b\u2069", "name contains bidirectional control character U+2066 at position 1"),
        ("ab\u2069", "name contains bidirectional control character U+2069 at position 2"),
    ],
)
def test_refuses_characters_that_corrupt_or_reorder_text_naming_code_and_position(
    name: str, message: str
) -> None:
    assert name_problem(name) == message


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("\u200b", "U+200B"),  # zero-width space
        ("\u2060", "U+2060"),  # word joiner
        ("\ufeff", "U+FEFF"),  # byte order mark
        ("\u3164", "U+3164"),  # Hangul filler (a "letter")
        ("\u2800", "U+2800"),  # braille blank (a "symbol")
        ("\u115f\u1160", "U+115F"),
        ("\uffa0", "U+FFA0"),
        ("\u0301", "U+0301"),  # lone combining mark
        ("\u200d", "U+200D"),  # ZWJ with nothing to join
        ("\U000e0041\U000e0042", "U+E0041"),  # tag characters
        ("\u200b \u3164", "U+200B"),
    ],
)
def test_refuses_names_with_no_visible_character(name: str, code: str) -> None:
    assert name_problem(name) == (
        f"name has no visible character ({code} at position 0 is invisible)"
    )
