"""The message envelope and its versioned encoding.

Records on ``default-topic`` (``GreetingRequest``) and on the output topic
(``Greeting``) are UTF-8 JSON objects with a ``v`` field giving the schema
version. Readers accept every version they know and refuse others with
``EnvelopeError``, which the consumer dead-letters instead of retrying.
``v`` must be the JSON integer 1 (not ``true`` or ``1.0``), ``id`` 32
lowercase hex digits, and a request's ``name`` must pass the same rules the
API applies (``hello_core.names``).

Version 1, request (key = message id)::

    {"v": 1, "id": "<32 hex>", "name": "<str>", "produced_at_ms": <int>}

Version 1, greeting (key = message id)::

    {"v": 1, "id": ..., "name": ..., "greeting": "Hello, <name>!",
     "produced_at_ms": <int>, "processed_at_ms": <int>,
     "source": {"topic": <str>, "partition": <int>, "offset": <int>}}

The ``content-type`` header names the schema too, so tools can tell records
apart without parsing them; readers trust the body's ``v`` field.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from hello_core.errors import EnvelopeError
from hello_core.names import name_problem

SCHEMA_VERSION = 1
REQUEST_CONTENT_TYPE = "application/vnd.hello.greeting-request.v1+json"
GREETING_CONTENT_TYPE = "application/vnd.hello.greeting.v1+json"

# What new_message_id produces: uuid4().hex.
_MESSAGE_ID = re.compile(r"[0-9a-f]{32}")

# Bodies larger than this are refused before parsing; ours are < 2 KiB.
MAX_BODY_BYTES = 64 * 1024


def greeting_for(name: str) -> str:
    """The greeting text, shared by the API's reply and the consumer's record."""
    return f"Hello, {name}!"


def new_message_id() -> str:
    return uuid.uuid4().hex


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class GreetingRequest:
    id: str
    name: str
    produced_at_ms: int

    def encode(self) -> bytes:
        # Written out rather than dataclasses.asdict: this runs once per call.
        return _dump(
            {
                "v": SCHEMA_VERSION,
                "id": self.id,
                "name": self.name,
                "produced_at_ms": self.produced_at_ms,
            }
        )

    @classmethod
    def decode(cls, body: bytes | None) -> GreetingRequest:
        data = _load(body)
        name = _field(data, "name", str)
        problem = name_problem(name)
        if problem is not None:
            raise EnvelopeError(f"field 'name' is refused: {problem}")
        return cls(
            id=_message_id(data),
            name=name,
            produced_at_ms=_field(data, "produced_at_ms", int),
        )


@dataclass(frozen=True, slots=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Greeting:
    id: str
    name: str
    greeting: str
    produced_at_ms: int
    processed_at_ms: int
    source: SourcePosition

    def encode(self) -> bytes:
        source = self.source
        return _dump(
            {
                "v": SCHEMA_VERSION,
                "id": self.id,
                "name": self.name,
                "greeting": self.greeting,
                "produced_at_ms": self.produced_at_ms,
                "processed_at_ms": self.processed_at_ms,
                "source": {
                    "topic": source.topic,
                    "partition": source.partition,
                    "offset": source.offset,
                },
            }
        )

    @classmethod
    def decode(cls, body: bytes | None) -> Greeting:
        data = _load(body)
        source = _field(data, "source", dict)
        return cls(
            id=_message_id(data),
            name=_field(data, "name", str),
            greeting=_field(data, "greeting", str),
            produced_at_ms=_field(data, "produced_at_ms", int),
            processed_at_ms=_field(data, "processed_at_ms", int),
            source=SourcePosition(
                topic=_field(source, "topic", str),
                partition=_field(source, "partition", int),
                offset=_field(source, "offset", int),
            ),
        )


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _load(body: bytes | None) -> dict[str, Any]:
    if body is None:
        raise EnvelopeError("message has no body")
    if len(body) > MAX_BODY_BYTES:
        raise EnvelopeError(f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"body is not UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EnvelopeError(f"body is a JSON {type(data).__name__}, not an object")
    version = data.get("v")
    # type() rather than isinstance: True and 1.0 compare equal to 1 but are not the int 1.
    if type(version) is not int or version != SCHEMA_VERSION:
        raise EnvelopeError(f"unsupported schema version {version!r}; this reader knows 1")
    return data


def _field(data: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = data.get(name)
    # bool is an int subclass; a flag where a number belongs is still wrong.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise EnvelopeError(f"field {name!r} must be {kind.__name__}, got {value!r}"[:200])
    return value


def _message_id(data: dict[str, Any]) -> str:
    value: str = _field(data, "id", str)
    if not _MESSAGE_ID.fullmatch(value):
        raise EnvelopeError(f"field 'id' must be 32 lowercase hex digits, got {value!r}"[:200])
    return value
