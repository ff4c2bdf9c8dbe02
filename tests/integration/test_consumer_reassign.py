"""The consumer's re-assignment at committed offsets, against a real broker.

What triggers it (librdkafka#5586, an OffsetFetch answered NOT_COORDINATOR as
a whole) cannot be caused on demand; tests/unit/consumer/test_reassign.py
covers that decision. Here the re-assignment itself runs on a real consumer
in our group configuration (cooperative-sticky), and fetching must resume at
exactly the committed offsets.

The same holds for partitions paused after a commit of unknown outcome: what
makes a commit go unanswered (a frozen broker) is tests/e2e/test_broker_stall.py;
here the pause, the resume at committed offsets and a rebalance during the
pause run on a real consumer, with the committed-offsets answer withheld.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from hello_consumer.loop import ConsumerLoop
from hello_consumer.settings import ConsumerSettings
from hello_core.kafka import consumer_config
from hello_core.settings import KafkaSettings
from hello_dev.kafka import KafkaCluster


def produce_round_robin(producer: Producer, topic: str, numbers: range) -> None:
    """Record ``n`` goes to partition ``n % 3``."""
    for i in numbers:
        producer.produce(topic, value=b"%d" % i, partition=i % 3)
    assert producer.flush(30) == 0


def three_partitions(
    kafka: KafkaCluster, prefix: str, records: int
) -> tuple[str, Producer, ConsumerLoop]:
    """A new 3-partition topic holding ``records`` records, and a loop for a new group."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kafka.create_topics({topic: 3})
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    produce_round_robin(producer, topic, range(records))
    settings = ConsumerSettings(
        input_topic=topic,
        group_id=f"group-{uuid.uuid4().hex[:8]}",
        kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap_servers),
    )
    return topic, producer, ConsumerLoop(settings)


def consumer_for(loop: ConsumerLoop) -> Consumer:
    return Consumer(consumer_config(loop.settings.kafka, group_id=loop.settings.group_id))


def test_reassigned_partitions_resume_at_their_committed_offsets(kafka: KafkaCluster) -> None:
    topic, _, loop = three_partitions(kafka, "reassign", 30)
    consumer = consumer_for(loop)
    try:
        consumer.subscribe([topic], on_assign=loop._on_assign)
        deadline = time.monotonic() + 60
        while len(loop.assignment) < 3:
            assert time.monotonic() < deadline, "no assignment within 60 s"
            consumer.consume(1, timeout=0.2)
        # Partition 0 has a committed offset of 4, partition 1 of 9, partition 2 none.
        consumer.commit(
            offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 9)], asynchronous=False
        )

        loop._reassign_wanted = True
        loop._reassign_at_committed(consumer)
        assert not loop._reassign_wanted

        first: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while len(first) < 3 and time.monotonic() < deadline:
            for message in consumer.consume(10, timeout=0.5):
                if message.error() is None:
                    first.setdefault(int(message.partition() or 0), int(message.offset() or 0))
        # Partition 2 has no committed offset: earliest, as auto.offset.reset says.
        assert first == {0: 4, 1: 9, 2: 0}
    finally:
        consumer.close()


def test_partitions_held_after_an_unknown_commit_resume_at_their_committed_offsets(
    kafka: KafkaCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, producer, loop = three_partitions(kafka, "hold", 60)
    consumer = consumer_for(loop)
    try:
        consumer.subscribe([topic], on_assign=loop._on_assign)

        # Offsets 6-9 of partitions 0 and 1 are the batch whose commit is in doubt.
        def in_doubt() -> list[Message]:
            return [m for m in read if m.partition() in (0, 1) and 6 <= (m.offset() or 0) < 10]

        read: list[Message] = []
        deadline = time.monotonic() + 60
        while len(in_doubt()) < 8:
            assert time.monotonic() < deadline, "records not read within 60 s"
            read += [m for m in consumer.consume(10, timeout=0.5) if m.error() is None]
        # The transaction of that batch landed for partition 0 only; partition 1 never committed.
        consumer.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)

        # The coordinator does not answer at first: the partitions stay held.
        real_ask = loop._ask_committed
        monkeypatch.setattr(loop, "_ask_committed", lambda *a, **k: ([], "no answer yet"))
        loop._hold_until_committed(consumer, in_doubt())
        assert loop._unsettled == {(topic, 0): 6, (topic, 1): 6}
        # New records on every partition: only the one not held is read.
        produce_round_robin(producer, topic, range(60, 90))
        # Read raw, not through _next_batch (which also drops held records):
        # librdkafka itself must not fetch the new records of paused partitions.
        fresh: set[int] = set()
        deadline = time.monotonic() + 30
        while 2 not in fresh or time.monotonic() < deadline - 27:
            assert time.monotonic() < deadline, "partition 2 not read within 30 s"
            fresh |= {
                int(m.partition() or 0)
                for m in consumer.consume(10, timeout=0.5)
                if m.error() is None and (m.offset() or 0) >= 20
            }
        assert fresh == {2}, "held partitions were fetched while in doubt"

        monkeypatch.setattr(loop, "_ask_committed", real_ask)
        deadline = time.monotonic() + 30
        while True:  # as run() does: a try, spaced out, then a poll
            loop._settle(consumer)
            if not loop._unsettled:
                break
            assert time.monotonic() < deadline, "not settled within 30 s"
            loop._next_batch(consumer)
        first: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while not {0, 1} <= set(first) and time.monotonic() < deadline:
            for message in loop._next_batch(consumer):
                first.setdefault(int(message.partition() or 0), int(message.offset() or 0))
        # Past the landed batch on partition 0; the batch start again on partition 1.
        assert {p: first.get(p) for p in (0, 1)} == {0: 10, 1: 6}
    finally:
        consumer.close()


def test_a_held_partition_that_a_rebalance_moves_away_and_back_is_fetched_again(
    kafka: KafkaCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, producer, loop = three_partitions(kafka, "hold-moved", 3)
    ours, other = consumer_for(loop), consumer_for(loop)
    try:
        ours.subscribe(
            [topic], on_assign=loop._on_assign, on_revoke=loop._on_revoke, on_lost=loop._on_lost
        )
        batch: list[Message] = []
        deadline = time.monotonic() + 60
        while len(batch) < 3:
            assert time.monotonic() < deadline, "records not read within 60 s"
            batch += [m for m in ours.consume(10, timeout=0.5) if m.error() is None]
        # Every partition is held, and the coordinator does not answer.
        real_ask = loop._ask_committed
        monkeypatch.setattr(loop, "_ask_committed", lambda *a, **k: ([], "no answer yet"))
        loop._hold_until_committed(ours, batch)
        assert len(loop._unsettled) == 3
        read: dict[int, list[int]] = {}

        def turn() -> None:
            for m in loop._next_batch(ours):
                read.setdefault(int(m.partition() or 0), []).append(int(m.offset() or 0))

        # Another member takes some partitions, then leaves: they come back.
        other.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(loop.assignment) == 3:
            assert time.monotonic() < deadline, "no rebalance within 60 s"
            other.consume(1, timeout=0.2)
            turn()
        moved = {p for (_, p) in {(topic, p) for p in range(3)} - loop.assignment}
        other.close()
        while len(loop.assignment) < 3:
            assert time.monotonic() < deadline, "partitions not back within 60 s"
            turn()
        assert {p for (_, p) in loop._unsettled} == {0, 1, 2} - moved

        # The rest settle; then every partition, the moved ones too, is read again.
        monkeypatch.setattr(loop, "_ask_committed", real_ask)
        deadline = time.monotonic() + 30
        while True:  # as run() does: a try, spaced out, then a poll
            loop._settle(ours)
            if not loop._unsettled:
                break
            assert time.monotonic() < deadline, "not settled within 30 s"
            turn()
        produce_round_robin(producer, topic, range(3, 6))
        deadline = time.monotonic() + 30
        while sum(map(len, read.values())) < 6 and time.monotonic() < deadline:
            turn()
        # Nothing was committed: each partition is read from its start again.
        assert read == {0: [0, 1], 1: [0, 1], 2: [0, 1]}, f"moved: {moved}"
    finally:
        other.close()
        ours.close()
