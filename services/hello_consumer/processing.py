"""Processing of one input record, with retries and dead-lettering. Pure: no I/O.

``Processor.handle`` turns a consumed record into exactly one output record:
a greeting for the output topic, or, when processing fails for good, the
original record with ``dlt.*`` headers for the dead-letter topic. Which of
the two happens is decided by ``classify``; retries of retryable failures
use tenacity with exponential backoff, and ``sleep`` is injectable so tests
need no real time.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import tenacity

from hello_core.envelope import (
    GREETING_CONTENT_TYPE,
    Greeting,
    GreetingRequest,
    SourcePosition,
    greeting_for,
    now_ms,
)
from hello_core.errors import EnvelopeError, ProcessingError, RetryableError

Headers = list[tuple[str, str | bytes | None]]

# Dead-letter reasons come from exceptions that may quote the record.
MAX_REASON_CHARS = 512


@dataclass(frozen=True, slots=True)
class InputRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OutputRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    dead_letter: bool
    message_id: str | None = None
    end_to_end_ms: int | None = None


class Outcome(enum.Enum):
    RETRY = "retry"
    DEAD_LETTER = "dead-letter"


def classify(error: BaseException) -> Outcome:
    """Retry what may succeed later; dead-letter what never will."""
    if isinstance(error, RetryableError):
        return Outcome.RETRY
    if isinstance(error, EnvelopeError | ProcessingError):
        return Outcome.DEAD_LETTER
    # An unexpected bug in a step: retrying the same input reproduces it.
    return Outcome.DEAD_LETTER


Step = Callable[[GreetingRequest, SourcePosition], Greeting]


def build_greeting(request: GreetingRequest, source: SourcePosition) -> Greeting:
    return Greeting(
        id=request.id,
        name=request.name,
        greeting=greeting_for(request.name),
        produced_at_ms=request.produced_at_ms,
        processed_at_ms=now_ms(),
        source=source,
    )


@dataclass
class Processor:
    output_topic: str
    dead_letter_topic: str
    max_attempts: int = 3
    backoff_seconds: float = 0.1
    backoff_max_seconds: float = 2.0
    step: Step = build_greeting
    sleep: Callable[[float], None] = time.sleep
    retries: int = 0

    def __post_init__(self) -> None:
        # Built once: the policy is the same for every record, and a Retrying
        # is reusable between calls (the loop is single-threaded).
        self._retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=tenacity.wait_exponential(
                multiplier=self.backoff_seconds, max=self.backoff_max_seconds
            ),
            retry=tenacity.retry_if_exception(lambda e: classify(e) is Outcome.RETRY),
            sleep=self.sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )

    def handle(self, record: InputRecord) -> OutputRecord:
        source = SourcePosition(record.topic, record.partition, record.offset)
        attempts = 0
        try:
            request = GreetingRequest.decode(record.value)

            def attempt() -> Greeting:
                nonlocal attempts
                attempts += 1
                return self.step(request, source)

            greeting = self._retrying(attempt)
        except Exception as exc:  # noqa: BLE001 - every failure ends in the dead-letter topic
            return self.dead_letter(record, exc, attempts=max(attempts, 1))
        return OutputRecord(
            topic=self.output_topic,
            key=greeting.id.encode(),
            value=greeting.encode(),
            headers=[("content-type", GREETING_CONTENT_TYPE.encode())],
            dead_letter=False,
            message_id=greeting.id,
            end_to_end_ms=greeting.processed_at_ms - greeting.produced_at_ms,
        )

    def _count_retry(self, _state: tenacity.RetryCallState) -> None:
        self.retries += 1

    def dead_letter(
        self, record: InputRecord, error: BaseException, *, attempts: int
    ) -> OutputRecord:
        """The original record, unchanged, with headers saying where it came from and why."""
        reason = f"{type(error).__name__}: {error}"[:MAX_REASON_CHARS]
        headers: Headers = [
            *record.headers,
            ("dlt.reason", reason.encode()),
            ("dlt.error.class", type(error).__name__.encode()),
            ("dlt.source.topic", record.topic.encode()),
            ("dlt.source.partition", str(record.partition).encode()),
            ("dlt.source.offset", str(record.offset).encode()),
            ("dlt.attempts", str(attempts).encode()),
            ("dlt.failed_at_ms", str(now_ms()).encode()),
        ]
        return OutputRecord(
            topic=self.dead_letter_topic,
            key=record.key,
            value=record.value,
            headers=headers,
            dead_letter=True,
        )


def header(headers: Sequence[tuple[str, bytes | str | None]] | None, name: str) -> bytes | None:
    for key, value in headers or ():
        if key == name:
            return value.encode() if isinstance(value, str) else value
    return None
