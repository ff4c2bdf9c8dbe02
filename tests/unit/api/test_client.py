"""The ``hello`` client's options and hints, without a server."""

from __future__ import annotations

import grpc
import pytest
from click.testing import CliRunner

from hello_api.client import DEFAULT_TIMEOUT_SECONDS, cli, hint_for


def test_default_timeout_outlasts_the_apis_delivery_timeout() -> None:
    assert DEFAULT_TIMEOUT_SECONDS == 15.0
    result = CliRunner().invoke(cli, ["--help"])
    assert "[default: 15.0;" in result.output or "[default: 15.0]" in result.output


@pytest.mark.parametrize(("timeout", "shown"), [("0", "0.0"), ("-1", "-1.0"), ("-0.5", "-0.5")])
def test_timeout_must_be_positive(timeout: str, shown: str) -> None:
    result = CliRunner().invoke(cli, ["--timeout", timeout, "say", "Ann"])
    assert result.exit_code == 2
    assert f"Invalid value for '--timeout': {shown} is not in the range x>0." in result.output


def test_oversized_request_is_not_worth_retrying() -> None:
    details = "Received message larger than max (70005 vs. 65536)"
    assert hint_for(grpc.StatusCode.RESOURCE_EXHAUSTED, details) == (
        "the request is larger than the API accepts; do not retry, shorten the name"
    )


def test_full_queue_is_worth_a_retry_with_backoff() -> None:
    details = "local producer queue is full (1 messages waiting); retry later"
    assert hint_for(grpc.StatusCode.RESOURCE_EXHAUSTED, details) == (
        "the API's producer queue is full; retry with backoff"
    )


def test_unavailable_hint_warns_that_a_retry_can_duplicate() -> None:
    assert hint_for(grpc.StatusCode.UNAVAILABLE, "Kafka did not acknowledge the message") == (
        "is the API running and Kafka reachable? The message may still have been written, "
        "so a retry can greet twice"
    )


def test_other_codes_have_no_hint() -> None:
    assert hint_for(grpc.StatusCode.INVALID_ARGUMENT, "name must not be empty") is None


def test_a_refused_connection_says_nothing_was_sent() -> None:
    details = (
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
        "Failed to connect to remote host: Connection refused"
    )
    assert hint_for(grpc.StatusCode.UNAVAILABLE, details) == (
        "is the API running at --target? Nothing was sent, so a retry is safe"
    )


def test_a_missing_topic_says_nothing_was_written() -> None:
    details = (
        "Kafka did not acknowledge the message: topic 'nosuch' does not exist; nothing was written"
    )
    assert hint_for(grpc.StatusCode.UNAVAILABLE, details) == (
        "create the topic, or fix HELLO_API_TOPIC; nothing was written"
    )


def test_a_name_that_is_not_utf8_is_a_usage_error_without_a_call() -> None:
    # A byte 0xff on the command line arrives as the lone surrogate U+DCFF.
    result = CliRunner().invoke(cli, ["--target", "127.0.0.1:1", "say", "a\udcff"])
    assert result.exit_code == 2
    assert "Invalid value for NAME: is not valid UTF-8 (byte 0xff at position 1)" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
