from __future__ import annotations

import json

import pytest

from hello_consumer.processing import InputRecord, Outcome, Processor, classify, header
from hello_core.envelope import Greeting, GreetingRequest, SourcePosition
from hello_core.errors import EnvelopeError, ProcessingError, RetryableError


def record(value: bytes | None, *, offset: int = 7) -> InputRecord:
    return InputRecord(
        topic="default-topic",
        partition=2,
        offset=offset,
        key=b"key-1",
        value=value,
        headers=[("traceparent", b"00-abc-def-01")],
    )


def request_body(name: str = "Ada", produced_at_ms: int = 1_000) -> bytes:
    return GreetingRequest(id="f" * 32, name=name, produced_at_ms=produced_at_ms).encode()


class FlakyStep:
    """Fails with the given errors in turn, then builds the greeting."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, request: GreetingRequest, source: SourcePosition) -> Greeting:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Greeting(request.id, request.name, "Hello!", request.produced_at_ms, 1_250, source)


def processor(step: FlakyStep | None = None, sleeps: list[float] | None = None) -> Processor:
    kwargs = {} if step is None else {"step": step}
    return Processor(
        output_topic="greetings",
        dead_letter_topic="dlt",
        max_attempts=3,
        backoff_seconds=0.1,
        backoff_max_seconds=0.15,
        sleep=(sleeps if sleeps is not None else []).append,
        **kwargs,  # type: ignore[arg-type]
    )


def test_valid_request_becomes_a_greeting_keyed_by_message_id() -> None:
    output = processor().handle(record(request_body("Ada")))
    assert output.topic == "greetings"
    assert output.dead_letter is False
    assert output.key == b"f" * 32
    assert output.message_id == "f" * 32
    greeting = Greeting.decode(output.value)
    assert greeting.greeting == "Hello, Ada!"
    assert greeting.source == SourcePosition("default-topic", 2, 7)
    assert greeting.processed_at_ms >= greeting.produced_at_ms


def test_undecodable_record_is_dead_lettered_unchanged_with_its_origin() -> None:
    output = processor().handle(record(b"not json", offset=99))
    assert output.topic == "dlt"
    assert output.dead_letter is True
    assert (output.key, output.value) == (b"key-1", b"not json")
    assert header(output.headers, "traceparent") == b"00-abc-def-01"
    assert header(output.headers, "dlt.source.topic") == b"default-topic"
    assert header(output.headers, "dlt.source.partition") == b"2"
    assert header(output.headers, "dlt.source.offset") == b"99"
    assert header(output.headers, "dlt.attempts") == b"1"
    assert header(output.headers, "dlt.error.class") == b"EnvelopeError"
    reason = header(output.headers, "dlt.reason")
    assert reason is not None and reason.startswith(b"EnvelopeError: body is not UTF-8 JSON")


def test_retryable_failure_is_retried_with_doubling_capped_backoff_then_succeeds() -> None:
    step = FlakyStep(RetryableError("db busy"), RetryableError("db busy"))
    sleeps: list[float] = []
    proc = processor(step, sleeps)
    output = proc.handle(record(request_body()))
    assert output.dead_letter is False
    assert step.calls == 3
    assert sleeps == [0.1, 0.15]
    assert proc.retries == 2


def test_retryable_failure_is_dead_lettered_after_max_attempts() -> None:
    step = FlakyStep(*(RetryableError("still busy") for _ in range(5)))
    sleeps: list[float] = []
    output = processor(step, sleeps).handle(record(request_body()))
    assert step.calls == 3
    assert len(sleeps) == 2
    assert output.dead_letter is True
    assert header(output.headers, "dlt.attempts") == b"3"
    assert header(output.headers, "dlt.reason") == b"RetryableError: still busy"


def test_permanent_failure_is_dead_lettered_without_retry() -> None:
    step = FlakyStep(ProcessingError("name is banned"))
    sleeps: list[float] = []
    output = processor(step, sleeps).handle(record(request_body()))
    assert step.calls == 1
    assert sleeps == []
    assert output.dead_letter is True
    assert header(output.headers, "dlt.attempts") == b"1"


def test_unexpected_bug_is_dead_lettered_not_retried_forever() -> None:
    step = FlakyStep(ZeroDivisionError("oops"))
    output = processor(step).handle(record(request_body()))
    assert step.calls == 1
    assert header(output.headers, "dlt.error.class") == b"ZeroDivisionError"


def test_dead_letter_reason_is_truncated() -> None:
    step = FlakyStep(ProcessingError("x" * 5000))
    output = processor(step).handle(record(request_body()))
    reason = header(output.headers, "dlt.reason")
    assert reason is not None and len(reason) == 512


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (RetryableError("r"), Outcome.RETRY),
        (ProcessingError("p"), Outcome.DEAD_LETTER),
        (EnvelopeError("e"), Outcome.DEAD_LETTER),
        (KeyError("k"), Outcome.DEAD_LETTER),
    ],
)
def test_classify(error: Exception, outcome: Outcome) -> None:
    assert classify(error) is outcome


def test_end_to_end_latency_is_processed_minus_produced() -> None:
    output = processor(FlakyStep()).handle(record(request_body(produced_at_ms=1_000)))
    assert output.end_to_end_ms == 250
    assert json.loads(output.value or b"")["processed_at_ms"] == 1_250
