"""SayHello's request deserializer: bad bytes become a value, never an exception."""

from __future__ import annotations

import pytest

from hello_api.server import Undecodable, decode_request
from hello_proto import hello_pb2


def test_valid_bytes_decode_to_the_request() -> None:
    data = hello_pb2.HelloRequest(name="Zoë").SerializeToString()
    request = decode_request(data)
    assert isinstance(request, hello_pb2.HelloRequest)
    assert request.name == "Zoë"


PARSE_ERROR = "Error parsing message with type 'hello.HelloRequest': "


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # field 1 (name), length 2, invalid UTF-8
        (b"\x0a\x02\xff\xfe", PARSE_ERROR + "String field had bad UTF-8"),
        (b"\xff\xff\xff\xff", PARSE_ERROR + "Wire format was corrupt"),
        # length says 16, only 2 bytes follow
        (b"\x0a\x10ab", PARSE_ERROR + "Wire format was corrupt"),
    ],
)
def test_invalid_bytes_decode_to_undecodable_with_protobufs_reason(
    data: bytes, reason: str
) -> None:
    request = decode_request(data)
    assert isinstance(request, Undecodable)
    assert request.reason == reason
