"""Recovering partitions whose committed offsets librdkafka never fetched (fake client).

librdkafka#5586: a whole-request NOT_COORDINATOR answer to the OffsetFetch of a
new assignment leaves those partitions unfetched for good. The real-broker
path is tests/e2e/test_broker_stall.py, which hits it only sometimes.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, KafkaException, TopicPartition

from hello_consumer.loop import ConsumerLoop
from hello_consumer.settings import ConsumerSettings

TOPIC = "default-topic"
NOT_FETCHED = KafkaError(
    KafkaError.NOT_COORDINATOR,
    'Failed to fetch committed offsets for 0 partition(s) in group "hello-consumer": '
    "Broker: Not coordinator",
)


class ErrorEvent:
    """What consume() returns for a client-level error."""

    def __init__(self, error: KafkaError) -> None:
        self._error = error

    def error(self) -> KafkaError:
        return self._error

    def topic(self) -> None:
        return None

    def partition(self) -> int:
        return 0


class FakeConsumer:
    def __init__(self, committed: dict[int, int], fail_committed: int = 0) -> None:
        self.committed_offsets = committed
        self.fail_committed = fail_committed
        self.calls: list[tuple[str, list[tuple[int, int]]]] = []
        self.events: list[Any] = []

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        events, self.events = self.events, []
        return events

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        if self.fail_committed:
            self.fail_committed -= 1
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "Timed out"))
        return [
            TopicPartition(p.topic, p.partition, self.committed_offsets.get(p.partition, -1001))
            for p in partitions
        ]

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("resume", [(p.partition, p.offset) for p in partitions]))

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("unassign", [(p.partition, p.offset) for p in partitions]))

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("assign", [(p.partition, p.offset) for p in partitions]))


def loop_with(assigned: list[int], **settings: Any) -> ConsumerLoop:
    loop = ConsumerLoop(ConsumerSettings(**settings))
    loop.stopping.wait = lambda _timeout=None: False  # type: ignore[method-assign]
    loop.assignment = {(TOPIC, p) for p in assigned}
    return loop


def test_the_error_event_leads_to_a_reassignment_at_the_committed_offsets() -> None:
    loop = loop_with([0, 1, 2])
    consumer = FakeConsumer(committed={0: 7, 2: 40})
    consumer.events = [ErrorEvent(NOT_FETCHED)]
    assert loop._next_batch(consumer) == []  # type: ignore[arg-type]
    assert consumer.calls == []  # not inside the poll: between batches

    loop._reassign_at_committed(consumer)  # type: ignore[arg-type]
    assert consumer.calls == [
        ("unassign", [(0, -1001), (1, -1001), (2, -1001)]),
        # Partition 1 has no committed offset: auto.offset.reset (earliest) decides.
        ("assign", [(0, 7), (1, OFFSET_BEGINNING), (2, 40)]),
    ]
    consumer.calls.clear()
    loop._next_batch(consumer)  # type: ignore[arg-type]
    assert consumer.calls == []  # done once, not on every turn


def test_latest_resets_a_partition_without_committed_offset_to_the_end() -> None:
    loop = loop_with([3], auto_offset_reset="latest")
    consumer = FakeConsumer(committed={})
    loop._reassign_at_committed(consumer)  # type: ignore[arg-type]
    assert consumer.calls[-1] == ("assign", [(3, OFFSET_END)])


def test_a_held_partition_never_committed_restarts_at_its_held_batch_not_the_reset_point() -> None:
    loop = loop_with([3, 4], auto_offset_reset="latest")
    # Partition 3 was paused after a commit of unknown outcome for a batch from offset 12.
    loop._unsettled = {(TOPIC, 3): 12}
    consumer = FakeConsumer(committed={})
    loop._reassign_at_committed(consumer)  # type: ignore[arg-type]
    assert consumer.calls == [
        # Paused by the hold; librdkafka would keep it paused through unassign and assign.
        ("resume", [(3, -1001)]),
        ("unassign", [(3, -1001), (4, -1001)]),
        ("assign", [(3, 12), (4, OFFSET_END)]),
    ]
    assert loop._unsettled == {}


def test_unreadable_committed_offsets_are_asked_for_again_on_the_next_turn() -> None:
    loop = loop_with([0])
    consumer = FakeConsumer(committed={0: 5}, fail_committed=1)
    consumer.events = [ErrorEvent(NOT_FETCHED)]
    loop._next_batch(consumer)  # type: ignore[arg-type]
    assert loop._reassign_wanted

    loop._reassign_at_committed(consumer)  # type: ignore[arg-type]
    assert consumer.calls == []
    assert loop._reassign_wanted

    loop._reassign_at_committed(consumer)  # type: ignore[arg-type]
    assert consumer.calls[-1] == ("assign", [(0, 5)])
    assert not loop._reassign_wanted


@pytest.mark.parametrize(
    "error",
    [
        KafkaError(KafkaError.NOT_COORDINATOR, "Offset commit failed: Broker: Not coordinator"),
        KafkaError(KafkaError._TRANSPORT, "Failed to fetch committed offsets: disconnected"),
    ],
)
def test_other_errors_do_not_reassign(error: KafkaError) -> None:
    loop = loop_with([0])
    consumer = FakeConsumer(committed={0: 5})
    consumer.events = [ErrorEvent(error)]
    loop._next_batch(consumer)  # type: ignore[arg-type]
    assert not loop._reassign_wanted


def test_a_client_level_consume_error_is_logged_without_a_made_up_partition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = loop_with([0])
    consumer = FakeConsumer(committed={})
    consumer.events = [
        ErrorEvent(KafkaError(KafkaError._MAX_POLL_EXCEEDED, "Application maximum poll interval"))
    ]
    caplog.set_level("WARNING", logger="hello_consumer.loop")
    assert loop._next_batch(consumer) == []  # type: ignore[arg-type]
    (record,) = [r for r in caplog.records if r.getMessage() == "consume error"]
    assert record.code == "_MAX_POLL_EXCEEDED"  # type: ignore[attr-defined]
    assert not hasattr(record, "partition")
    assert not hasattr(record, "topic")
