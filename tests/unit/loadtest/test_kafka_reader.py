"""GreetingReader.read with a stand-in for confluent-kafka's Consumer: broker trouble."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

import hello_loadtest.kafka_reader as kafka_reader
from hello_core.envelope import Greeting, SourcePosition
from hello_core.settings import KafkaSettings
from hello_loadtest.kafka_reader import GreetingReader, VerificationError

TOPIC = "greetings"
REFUSED = (
    "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused "
    "(after 0ms in state CONNECT)"
)


class Message:
    def __init__(self, *, error: KafkaError | None = None, value: bytes | None = None) -> None:
        self._error, self._value = error, value

    def error(self) -> KafkaError | None:
        return self._error

    def value(self) -> bytes | None:
        return self._value

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0


def greeting(message_id: str) -> Message:
    source = SourcePosition("requests", 0, 0)
    value = Greeting(message_id, "n", "Hello, n!", 1_000, 1_004, source).encode()
    return Message(value=value)


class FakeConsumer:
    """Batches handed out by consume(); errors reported through error_cb first.

    ``reachable`` is whether list_topics answers once the reading is over,
    ``topic_gone`` whether its answer then lacks the topic.
    """

    def __init__(
        self,
        batches: list[tuple[list[KafkaError], list[Message]]],
        reachable: bool,
        topic_gone: bool = False,
    ):
        self.batches, self.reachable, self.topic_gone = batches, reachable, topic_gone
        self.error_cb: Any = None
        self.checks = 0

    def __call__(self, config: dict[str, Any]) -> FakeConsumer:
        self.error_cb = config["error_cb"]
        return self

    def list_topics(self, topic: str, timeout: float) -> Any:
        if self.checks > 0 and not self.reachable:  # the first check is mark()
            raise KafkaException(
                KafkaError(
                    KafkaError._TRANSPORT, "Failed to get metadata: Local: Broker transport failure"
                )
            )
        self.checks += 1
        if self.checks > 1 and self.topic_gone:
            return SimpleNamespace(topics={})
        partitions = {0: SimpleNamespace(leader=1), 1: SimpleNamespace(leader=1)}
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions=partitions)})

    def get_watermark_offsets(self, tp: Any, timeout: float, cached: bool = False):
        return 0, 7

    def assign(self, partitions: Any) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        if not self.batches:
            time.sleep(0.01)
            return []
        errors, messages = self.batches.pop(0)
        for error in errors:
            self.error_cb(error)
        return messages

    def close(self) -> None:
        pass


def reader_with(monkeypatch, consumer: FakeConsumer) -> GreetingReader:
    monkeypatch.setattr(kafka_reader, "Consumer", consumer)
    reader = GreetingReader(KafkaSettings(bootstrap_servers="127.0.0.1:9092"), TOPIC)
    reader.mark()
    return reader


DOWN = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
TRANSPORT = KafkaError(KafkaError._TRANSPORT, REFUSED)


def test_kafka_lost_while_reading_and_not_back_raises_a_verification_error(monkeypatch):
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    consumer = FakeConsumer([([], [greeting(a)]), ([TRANSPORT, DOWN], [])], reachable=False)
    reader = reader_with(monkeypatch, consumer)
    with pytest.raises(VerificationError) as caught:
        reader.read({a, b}, timeout_s=0.2)
    assert str(caught.value) == (
        f"lost contact with Kafka at 127.0.0.1:9092 while reading 'greetings': {REFUSED}; "
        "lost/duplicate counts are unknown"
    )


def test_a_broker_error_as_a_message_error_is_read_through_too(monkeypatch):
    message_error = KafkaError(KafkaError._TRANSPORT, "GroupCoordinator: Disconnected")
    consumer = FakeConsumer([([], [Message(error=message_error)])], reachable=False)
    reader = reader_with(monkeypatch, consumer)
    with pytest.raises(VerificationError) as caught:
        reader.read({uuid.uuid4().hex}, timeout_s=0.2)
    assert str(caught.value) == (
        "lost contact with Kafka at 127.0.0.1:9092 while reading 'greetings': "
        "GroupCoordinator: Disconnected; lost/duplicate counts are unknown"
    )


def test_ids_missing_from_a_reachable_kafka_are_returned_as_not_read(monkeypatch):
    # The broker came and went, but answers at the end: the missing id was not there.
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    consumer = FakeConsumer([([TRANSPORT, DOWN], [greeting(a)])], reachable=True)
    reader = reader_with(monkeypatch, consumer)
    records, timed_out, _ = reader.read({a, b}, timeout_s=0.2)
    assert [r.message_id for r in records] == [a]
    assert timed_out is True


def test_every_id_read_despite_errors_needs_no_check(monkeypatch):
    a = uuid.uuid4().hex
    consumer = FakeConsumer([([DOWN], [greeting(a)])], reachable=False)
    reader = reader_with(monkeypatch, consumer)
    records, timed_out, _ = reader.read({a}, timeout_s=5, settle_s=0.05)
    assert ([r.message_id for r in records], timed_out) == ([a], False)
    assert consumer.checks == 1  # mark() only


def test_other_message_errors_still_stop_the_reading(monkeypatch):
    unknown = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "Broker: Unknown topic or partition")
    consumer = FakeConsumer([([], [Message(error=unknown)])], reachable=True)
    reader = reader_with(monkeypatch, consumer)
    with pytest.raises(VerificationError) as caught:
        reader.read({uuid.uuid4().hex}, timeout_s=1)
    assert str(caught.value) == (
        'reading greetings: KafkaError{code=UNKNOWN_TOPIC_OR_PART,val=3,str="Broker: Unknown '
        'topic or partition"}'
    )


def test_a_topic_gone_by_the_end_is_not_called_a_lost_broker(monkeypatch):
    consumer = FakeConsumer([([TRANSPORT], [])], reachable=True, topic_gone=True)
    reader = reader_with(monkeypatch, consumer)
    with pytest.raises(VerificationError) as caught:
        reader.read({uuid.uuid4().hex}, timeout_s=0.2)
    assert str(caught.value) == (
        "reading greetings: the topic is gone; lost/duplicate counts are unknown"
    )
