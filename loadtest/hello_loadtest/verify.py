"""Reconciling the calls the API accepted with the greetings the consumer wrote.

Pure: the Kafka reader (``kafka_reader``) feeds it what it read, and what
went wrong while it read (``unread_error``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from hello_loadtest.stats import new_histogram


@dataclass(frozen=True, slots=True)
class Delivered:
    """One greeting record read from the output topic."""

    message_id: str
    produced_at_ms: int
    processed_at_ms: int


@dataclass(frozen=True, slots=True)
class Reconciliation:
    expected: int  # ids the API returned in OK replies
    received: int  # records read whose id was expected, duplicates included
    lost: int  # expected ids never read
    duplicates: int  # records beyond the first for an expected id
    unexpected: int  # records for ids this run did not send (other traffic)
    # accepted (produced_at_ms) -> processed (processed_at_ms), in microseconds,
    # one value per expected id (its first record).
    e2e: HdrHistogram


def reconcile(expected_ids: Iterable[str], delivered: Iterable[Delivered]) -> Reconciliation:
    expected = set(expected_ids)
    seen: Counter[str] = Counter()
    unexpected = 0
    e2e = new_histogram()
    for record in delivered:
        if record.message_id not in expected:
            unexpected += 1
            continue
        seen[record.message_id] += 1
        if seen[record.message_id] == 1:
            # Clock granularity is a millisecond; 0 ms becomes the histogram's 1 µs floor.
            delay_ms = max(record.processed_at_ms - record.produced_at_ms, 0)
            e2e.record_value(max(delay_ms * 1000, 1))
    return Reconciliation(
        expected=len(expected),
        received=sum(seen.values()),
        lost=len(expected) - len(seen),
        duplicates=sum(n - 1 for n in seen.values()),
        unexpected=unexpected,
        e2e=e2e,
    )


# librdkafka's names (KafkaError.name()) for "the brokers could not be talked
# to". It retries these itself, so the reader keeps reading through them.
CONTACT_ERRORS = frozenset({"_TRANSPORT", "_ALL_BROKERS_DOWN", "_RESOLVE", "_TIMED_OUT"})
_ALL_BROKERS_DOWN = "_ALL_BROKERS_DOWN"


@dataclass(frozen=True, slots=True)
class ReaderError:
    """An error librdkafka reported to the reader (error callback or message error)."""

    code: str  # librdkafka's name for it, e.g. "_TRANSPORT"
    reason: str


def unread_error(
    *,
    missing: int,
    unreachable: str | None,
    errors: Sequence[ReaderError],
    bootstrap_servers: str,
    topic: str,
) -> str | None:
    """Why the reading cannot be trusted, or None when the missing ids are lost.

    ``missing`` expected ids were not read by the end of the reading;
    ``unreachable`` is None when Kafka answered for the topic after that,
    else why not; ``errors`` are what librdkafka reported meanwhile, oldest
    first. Ids missing from a topic the reader can reach were not there: a
    measurement. Ids missing while Kafka cannot be reached were not read, so
    nothing is known about them. The reason given is librdkafka's most
    specific: its last error other than "all brokers are down", else that,
    else why the check at the end failed.
    """
    if missing == 0 or unreachable is None:
        return None
    specific = [e for e in errors if e.code != _ALL_BROKERS_DOWN]
    chosen = specific or list(errors)
    reason = chosen[-1].reason if chosen else unreachable
    return (
        f"lost contact with Kafka at {bootstrap_servers} while reading {topic!r}: {reason}; "
        "lost/duplicate counts are unknown"
    )
