"""Reading back what the pipeline wrote, as committed (read_committed)."""

from __future__ import annotations

import time
import uuid
from collections import Counter

from confluent_kafka import Consumer, Message

from hello_core.envelope import Greeting


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    keys: set[bytes],
    timeout: float = 90.0,
) -> list[Message]:
    """Every committed record of ``topic`` from the start, stopping once a record with
    each of ``keys`` was seen and the topic has been quiet for a second (so that
    duplicates arriving late would still be caught)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    records: list[Message] = []
    missing = set(keys)
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, timeout=0.2)
            good = [m for m in batch if m.error() is None]
            records.extend(good)
            missing.difference_update(m.key() for m in good)
            if good:
                quiet_since = time.monotonic()
            elif not missing and time.monotonic() - quiet_since > 1.0:
                break
    finally:
        consumer.close()
    return records


def greetings_by_id(records: list[Message]) -> tuple[dict[str, Greeting], Counter[str]]:
    greetings: dict[str, Greeting] = {}
    counts: Counter[str] = Counter()
    for record in records:
        greeting = Greeting.decode(record.value())
        assert record.key() == greeting.id.encode()
        greetings[greeting.id] = greeting
        counts[greeting.id] += 1
    return greetings, counts
