from __future__ import annotations

import json

import pytest

from hello_core.envelope import (
    MAX_BODY_BYTES,
    Greeting,
    GreetingRequest,
    SourcePosition,
    greeting_for,
    new_message_id,
)
from hello_core.errors import EnvelopeError


def test_request_round_trips_and_has_the_documented_v1_shape() -> None:
    request = GreetingRequest(id="ab" * 16, name="Zoë", produced_at_ms=1_700_000_000_123)
    body = request.encode()
    assert json.loads(body) == {
        "v": 1,
        "id": "ab" * 16,
        "name": "Zoë",
        "produced_at_ms": 1_700_000_000_123,
    }
    assert GreetingRequest.decode(body) == request


def test_greeting_round_trips_with_its_source_position() -> None:
    greeting = Greeting(
        id="1" * 32,
        name="Bob",
        greeting=greeting_for("Bob"),
        produced_at_ms=10,
        processed_at_ms=25,
        source=SourcePosition("default-topic", 3, 41),
    )
    data = json.loads(greeting.encode())
    assert data["greeting"] == "Hello, Bob!"
    assert data["source"] == {"topic": "default-topic", "partition": 3, "offset": 41}
    assert Greeting.decode(greeting.encode()) == greeting


def test_message_ids_are_32_hex_digits_and_unique() -> None:
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (None, "no body"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"{not json", "not UTF-8 JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"v": 2, "id": "x", "name": "n", "produced_at_ms": 1}', "unsupported schema version 2"),
        (b'{"id": "x", "name": "n", "produced_at_ms": 1}', "unsupported schema version None"),
        (b'{"v": 1, "id": 7, "name": "n", "produced_at_ms": 1}', "field 'id' must be str"),
        (
            b'{"v": 1, "id": "%s", "name": "n", "produced_at_ms": true}' % (b"a" * 32),
            "'produced_at_ms' must be int",
        ),
        (b'{"v": 1, "id": "x", "produced_at_ms": 1}', "field 'name' must be str, got None"),
    ],
)
def test_decode_refuses_bad_bodies_with_a_reason(body: bytes | None, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason.replace("(", r"\(")):
        GreetingRequest.decode(body)


ID = "0123456789abcdef" * 2


def request_body(**fields: object) -> bytes:
    return json.dumps({"v": 1, "id": ID, "name": "Ann", "produced_at_ms": 1, **fields}).encode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"v": True}, "unsupported schema version True; this reader knows 1"),
        ({"v": 1.0}, "unsupported schema version 1.0; this reader knows 1"),
        ({"v": "1"}, "unsupported schema version '1'; this reader knows 1"),
        ({"id": "x"}, "field 'id' must be 32 lowercase hex digits, got 'x'"),
        ({"id": ID.upper()}, f"field 'id' must be 32 lowercase hex digits, got {ID.upper()!r}"),
        ({"id": ID + "0"}, f"field 'id' must be 32 lowercase hex digits, got '{ID}0'"),
        ({"id": ID[:-1] + "\n"}, "field 'id' must be 32 lowercase hex digits, got"),
        (
            {"name": "\u200b"},
            "field 'name' is refused: name has no visible character "
            "(U+200B at position 0 is invisible)",
        ),
        (
            {"name": "abc\u202edef"},
            "field 'name' is refused: name contains bidirectional control character "
            "U+202E at position 3",
        ),
        ({"name": ""}, "field 'name' is refused: name must not be empty or only whitespace"),
    ],
)
def test_decode_refuses_what_the_api_would_never_write(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(EnvelopeError) as info:
        GreetingRequest.decode(request_body(**fields))
    assert str(info.value).startswith(message)


def test_greeting_decode_checks_the_message_id_too() -> None:
    body = json.loads(
        Greeting(
            id=ID,
            name="Bob",
            greeting="Hello, Bob!",
            produced_at_ms=1,
            processed_at_ms=2,
            source=SourcePosition("t", 0, 0),
        ).encode()
    )
    body["id"] = "not-hex"
    with pytest.raises(EnvelopeError) as info:
        Greeting.decode(json.dumps(body).encode())
    assert str(info.value) == "field 'id' must be 32 lowercase hex digits, got 'not-hex'"


def test_decode_refuses_oversized_bodies_before_parsing() -> None:
    with pytest.raises(EnvelopeError, match=f"exceeds {MAX_BODY_BYTES}"):
        GreetingRequest.decode(b" " * (MAX_BODY_BYTES + 1))
