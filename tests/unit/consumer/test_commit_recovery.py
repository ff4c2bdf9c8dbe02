"""The loop's handling of a commit that never answers (pure logic, fake clients).

The real-broker version of this is tests/e2e/test_broker_stall.py; librdkafka
only sometimes gets stuck there, so the decisions are pinned down here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from hello_consumer import loop as loop_module
from hello_consumer.loop import ConsumerLoop, FatalConsumerError
from hello_consumer.settings import ConsumerSettings
from hello_core.envelope import GreetingRequest

TOPIC = "default-topic"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeMessage:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition = partition
        self._offset = offset
        self._value = GreetingRequest(uuid.uuid4().hex, "Ada", 1).encode()

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None

    def error(self) -> None:
        return None


def timed_out() -> KafkaException:
    return KafkaException(
        KafkaError(KafkaError._TIMED_OUT, "Timed out, retry call to resume", retriable=True)
    )


class FakeProducer:
    def __init__(self, clock: FakeClock, commit_errors: list[KafkaException]) -> None:
        self.clock = clock
        self.commit_errors = commit_errors
        self.commit_timeouts: list[float] = []
        self.produced = 0
        self.purged = False

    def begin_transaction(self) -> None:
        pass

    def produce(self, *_args: Any, **_kwargs: Any) -> None:
        self.produced += 1

    def send_offsets_to_transaction(self, *_args: Any) -> None:
        pass

    def commit_transaction(self, timeout: float) -> None:
        self.commit_timeouts.append(timeout)
        if self.commit_errors:
            self.clock.now += timeout  # the call used its whole timeout
            raise self.commit_errors.pop(0)

    def purge(self) -> None:
        self.purged = True

    def flush(self, timeout: float) -> int:
        return 0


class FakeConsumer:
    def __init__(self, committed: dict[int, int], committed_error: KafkaError | None = None):
        self.committed_offsets = committed
        self.committed_error = committed_error
        self.seeks: list[tuple[int, int]] = []
        self.paused: set[int] = set()
        self.events: list[str] = []

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {p.partition for p in partitions}
        self.events.append("pause " + ",".join(str(p.partition) for p in partitions))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {p.partition for p in partitions}
        self.events.append("resume " + ",".join(str(p.partition) for p in partitions))

    def consumer_group_metadata(self) -> object:
        return object()

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        if self.committed_error is not None:
            raise KafkaException(self.committed_error)
        return [
            TopicPartition(p.topic, p.partition, self.committed_offsets.get(p.partition, -1001))
            for p in partitions
        ]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.partition, tp.offset))
        self.events.append(f"seek {tp.partition}@{tp.offset}")


def make_loop(
    clock: FakeClock, first: FakeProducer, replacement: FakeProducer
) -> tuple[ConsumerLoop, list[FakeProducer]]:
    loop = ConsumerLoop(ConsumerSettings(transaction_timeout_ms=10_000), clock=clock)
    created: list[FakeProducer] = []

    def create() -> FakeProducer:
        created.append(replacement)
        return replacement

    loop._create_producer = create  # type: ignore[method-assign, assignment]
    loop._producer = first  # type: ignore[assignment]
    loop.assignment = {(TOPIC, 0), (TOPIC, 1)}
    return loop, created


BATCH = [FakeMessage(0, 40), FakeMessage(0, 41), FakeMessage(1, 7)]


def test_retriable_commit_errors_are_retried_within_the_transaction_timeout() -> None:
    clock = FakeClock()
    first = FakeProducer(clock, [])
    loop, created = make_loop(clock, first, FakeProducer(clock, []))

    def times_out_after_4s_once(timeout: float) -> None:
        first.commit_timeouts.append(timeout)
        if len(first.commit_timeouts) == 1:
            clock.now += 4
            raise timed_out()

    first.commit_transaction = times_out_after_4s_once  # type: ignore[method-assign]
    consumer = FakeConsumer({})
    loop._process_once(consumer, BATCH)  # type: ignore[arg-type]
    assert first.commit_timeouts == [10.0, 6.0]  # the retry gets the 6 s left
    assert created == []
    assert consumer.seeks == []
    assert loop._failures == 0


def test_commit_unanswered_past_the_transaction_timeout_replaces_the_producer() -> None:
    clock = FakeClock()
    first = FakeProducer(clock, [timed_out(), timed_out()])
    replacement = FakeProducer(clock, [])
    loop, created = make_loop(clock, first, replacement)
    # The batch did land: committed offsets are past it, so nothing is read twice.
    consumer = FakeConsumer({0: 42, 1: 8})
    loop._process_once(consumer, BATCH)  # type: ignore[arg-type]
    assert first.commit_timeouts == [10.0]  # one call used up the transaction timeout
    assert created == [replacement]
    assert id(loop._producer) == id(replacement)
    assert first.purged
    assert consumer.events == ["pause 0,1", "seek 0@42", "seek 1@8", "resume 0,1"]
    assert loop._unsettled == {}
    assert loop._failures == 0  # settled at once: nothing is failing any more
    assert loop_module.PRODUCER_REPLACEMENTS._value.get() >= 1


def test_a_batch_that_did_not_land_is_read_again_from_its_start() -> None:
    clock = FakeClock()
    first = FakeProducer(clock, [timed_out()])
    loop, _ = make_loop(clock, first, FakeProducer(clock, []))
    # Partition 0 had an earlier commit at the batch start; partition 1 never committed.
    consumer = FakeConsumer({0: 40})
    loop._process_once(consumer, BATCH)  # type: ignore[arg-type]
    assert consumer.seeks == [(0, 40), (1, 7)]


def test_revoked_partitions_are_left_to_their_new_owner() -> None:
    clock = FakeClock()
    loop, _ = make_loop(clock, FakeProducer(clock, [timed_out()]), FakeProducer(clock, []))
    loop.assignment = {(TOPIC, 1)}
    consumer = FakeConsumer({0: 40, 1: 8})
    loop._process_once(consumer, BATCH)  # type: ignore[arg-type]
    assert consumer.seeks == [(1, 8)]


def test_partitions_stay_paused_while_committed_offsets_cannot_be_read_then_it_exits() -> None:
    clock = FakeClock()
    loop, _ = make_loop(clock, FakeProducer(clock, [timed_out()]), FakeProducer(clock, []))
    consumer = FakeConsumer({}, committed_error=KafkaError(KafkaError._TIMED_OUT, "no answer"))
    loop._process_once(consumer, BATCH)  # type: ignore[arg-type]
    # Not guessed: held, and the loop goes on polling.
    assert consumer.seeks == []
    assert consumer.paused == {0, 1}
    assert loop._unsettled == {(TOPIC, 0): 40, (TOPIC, 1): 7}
    # Counted from the failure (the commit call used the 10 s transaction timeout).
    assert loop._unsettled_since == loop._failing_since == 1010.0
    clock.now += loop.settings.stall_seconds - 1
    loop._settle(consumer)  # type: ignore[arg-type]
    assert consumer.paused == {0, 1}
    clock.now += loop_module.SETTLE_READ_TIMEOUT
    with pytest.raises(
        FatalConsumerError,
        match=r"cannot read the committed offsets of default-topic\[0\],default-topic\[1\] "
        r"for 64s after a commit of unknown outcome: no answer",
    ):
        loop._settle(consumer)  # type: ignore[arg-type]
    assert consumer.seeks == []


class SlowCoordinatorConsumer(FakeConsumer):
    """Times out reading committed offsets ``failures`` times, then answers."""

    def __init__(self, committed: dict[int, int], failures: int) -> None:
        super().__init__(committed)
        self.failures = failures
        self.asked: list[float] = []

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.asked.append(timeout)
        self.events.append(f"ask {timeout:g}s")
        if len(self.asked) <= self.failures:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "no answer yet"))
        return super().committed(partitions, timeout)


def test_the_loop_polls_between_short_tries_and_resumes_once_offsets_are_read() -> None:
    clock = FakeClock()
    loop, _ = make_loop(clock, FakeProducer(clock, [timed_out()]), FakeProducer(clock, []))
    consumer = SlowCoordinatorConsumer({0: 40, 1: 8}, failures=2)
    polls: list[float] = []

    def consume(num_messages: int, timeout: float) -> list[Any]:
        polls.append(timeout)
        consumer.events.append("poll")
        clock.now += 3
        if len(polls) == 6:
            loop.stopping.set()
        return []

    consumer.consume = consume  # type: ignore[attr-defined]
    consumer.close = lambda: None  # type: ignore[attr-defined]
    loop._process_once(consumer, BATCH)  # type: ignore[arg-type]
    assert consumer.paused == {0, 1}
    assert loop._failing_since is not None
    loop._check_topics = lambda: None  # type: ignore[method-assign]
    loop._create_clients = lambda: (consumer, loop._producer)  # type: ignore[method-assign, assignment, return-value]
    loop.run()
    assert consumer.events == [
        "pause 0,1",
        "ask 5s",  # at once, in the failed batch's turn
        "poll",  # tries are 5 s apart; each poll takes 3 s here
        "poll",
        "ask 5s",
        "poll",
        "poll",
        "ask 5s",
        "seek 0@40",
        "seek 1@8",
        "resume 0,1",
        "poll",
        "poll",
    ]
    assert loop._unsettled == {}
    # Resolved: an idle input afterwards does not fail liveness.
    assert loop._failing_since is None
    assert loop._failures == 0


def test_a_hold_ended_by_a_rebalance_leaves_liveness_green_on_an_idle_input() -> None:
    clock = FakeClock()
    loop, _ = make_loop(clock, FakeProducer(clock, [timed_out()]), FakeProducer(clock, []))
    consumer = FakeConsumer({}, committed_error=KafkaError(KafkaError._TIMED_OUT, "no answer"))
    loop._process_once(consumer, BATCH)  # type: ignore[arg-type]
    assert loop._unsettled
    loop._on_lost(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])  # type: ignore[arg-type]
    loop._on_assign(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])  # type: ignore[arg-type]
    clock.now += loop.settings.stall_seconds + 1
    loop.last_turn = clock.now  # the loop keeps turning; no records arrive
    assert loop.live() == (True, "ok")


def test_records_of_a_paused_partition_fetched_before_the_pause_are_not_processed() -> None:
    clock = FakeClock()
    loop, _ = make_loop(clock, FakeProducer(clock, []), FakeProducer(clock, []))
    loop._unsettled = {(TOPIC, 0): 40}
    fetched = [FakeMessage(0, 43), FakeMessage(1, 9), FakeMessage(0, 44)]
    consumer = FakeConsumer({})
    batches = [fetched[:1], fetched[1:]]
    consumer.consume = lambda num_messages, timeout: batches.pop(0)  # type: ignore[attr-defined]
    records = loop._next_batch(consumer)  # type: ignore[arg-type]
    assert [(m.partition(), m.offset()) for m in records] == [(1, 9)]


def test_records_of_a_partition_revoked_while_taking_the_batch_are_left_to_its_new_owner() -> None:
    clock = FakeClock()
    loop, _ = make_loop(clock, FakeProducer(clock, []), FakeProducer(clock, []))
    consumer = FakeConsumer({})
    first = [FakeMessage(0, 5)]

    def consume(num_messages: int, timeout: float) -> list[Any]:
        if first:
            return [first.pop()]
        # The rebalance callbacks run inside this second call.
        loop._on_revoke(consumer, [TopicPartition(TOPIC, 0)])  # type: ignore[arg-type]
        return [FakeMessage(1, 9)]

    consumer.consume = consume  # type: ignore[attr-defined]
    records = loop._next_batch(consumer)  # type: ignore[arg-type]
    assert [(m.partition(), m.offset()) for m in records] == [(1, 9)]


@pytest.mark.parametrize("callback", ["_on_revoke", "_on_lost", "_on_assign"])
def test_a_rebalance_ends_the_hold_on_the_partitions_it_moves_and_resumes_them(
    callback: str,
) -> None:
    clock = FakeClock()
    loop, _ = make_loop(clock, FakeProducer(clock, []), FakeProducer(clock, []))
    consumer = FakeConsumer({})
    consumer.paused = {0, 1}
    loop._unsettled = {(TOPIC, 0): 40, (TOPIC, 1): 7}
    loop._unsettled_since = clock.now
    getattr(loop, callback)(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 2)])
    assert loop._unsettled == {(TOPIC, 1): 7}
    # librdkafka would keep it paused after it comes back: resumed here.
    assert consumer.events == ["resume 0"]
    getattr(loop, callback)(consumer, [TopicPartition(TOPIC, 1)])
    assert loop._unsettled == {}
    assert loop._unsettled_since is None
    assert consumer.paused == set()


def test_non_retriable_commit_errors_abort_and_rewind_to_the_batch_start() -> None:
    clock = FakeClock()
    abortable = KafkaException(KafkaError(KafkaError._STATE, "abortable", txn_requires_abort=True))
    first = FakeProducer(clock, [abortable])
    aborted: list[float] = []
    first.abort_transaction = aborted.append  # type: ignore[attr-defined]
    loop, created = make_loop(clock, first, FakeProducer(clock, []))
    loop.stopping.set()  # no backoff wait in the test
    consumer = FakeConsumer({0: 99, 1: 99})
    loop._process_once(consumer, BATCH)  # type: ignore[arg-type]
    assert aborted == [10.0]  # the transaction timeout
    assert created == []
    assert consumer.seeks == [
        (0, 40),
        (1, 7),
    ]  # not the committed offsets: it is known not to have landed


def test_an_abort_that_fails_replaces_the_producer_and_resumes_from_committed_offsets() -> None:
    clock = FakeClock()
    abortable = KafkaException(
        KafkaError(KafkaError._MSG_TIMED_OUT, "10 message(s) timed out", txn_requires_abort=True)
    )
    first = FakeProducer(clock, [abortable])

    def abort_times_out(timeout: float) -> None:
        raise timed_out()

    first.abort_transaction = abort_times_out  # type: ignore[attr-defined]
    replacement = FakeProducer(clock, [])
    loop, created = make_loop(clock, first, replacement)
    loop.stopping.set()
    consumer = FakeConsumer({0: 40})
    loop._process_once(consumer, BATCH)  # type: ignore[arg-type]
    assert created == [replacement]
    assert consumer.seeks == [(0, 40), (1, 7)]


def test_a_fenced_producer_is_replaced_and_gives_up_after_three_in_five_minutes() -> None:
    clock = FakeClock()

    def fenced() -> KafkaException:
        return KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))

    loop, created = make_loop(clock, FakeProducer(clock, [fenced()]), FakeProducer(clock, []))
    loop.stopping.set()
    for _ in range(3):
        assert loop._producer is not None
        loop._producer.commit_errors = [fenced()]  # type: ignore[attr-defined]
        loop._process_once(FakeConsumer({0: 42, 1: 8}), BATCH)  # type: ignore[arg-type]
        clock.now += 60
    assert len(created) == 3
    loop._producer.commit_errors = [fenced()]  # type: ignore[union-attr]
    with pytest.raises(FatalConsumerError, match="producer replaced 4 times in 300s"):
        loop._process_once(FakeConsumer({}), BATCH)  # type: ignore[arg-type]
    # Five minutes later the earlier replacements no longer count.
    clock.now += 300
    loop._producer.commit_errors = [fenced()]  # type: ignore[union-attr]
    loop._process_once(FakeConsumer({}), BATCH)  # type: ignore[arg-type]
    assert len(created) == 4


def test_initialising_the_new_producer_is_retried_while_the_broker_is_away() -> None:
    clock = FakeClock()
    replacement = FakeProducer(clock, [])
    loop, _ = make_loop(clock, FakeProducer(clock, [timed_out()]), replacement)
    attempts: list[int] = []

    def create() -> FakeProducer:
        attempts.append(1)
        if len(attempts) < 3:
            raise timed_out()
        return replacement

    loop._create_producer = create  # type: ignore[method-assign, assignment]
    loop._process_once(FakeConsumer({0: 42, 1: 8}), BATCH)  # type: ignore[arg-type]
    assert len(attempts) == 3
    assert id(loop._producer) == id(replacement)


def test_a_stop_while_the_new_producer_cannot_start_exits() -> None:
    clock = FakeClock()
    loop, _ = make_loop(clock, FakeProducer(clock, [timed_out()]), FakeProducer(clock, []))

    def create() -> FakeProducer:
        loop.stopping.set()
        raise timed_out()

    loop._create_producer = create  # type: ignore[method-assign, assignment]
    with pytest.raises(FatalConsumerError, match="cannot start a new transactional producer"):
        loop._process_once(FakeConsumer({}), BATCH)  # type: ignore[arg-type]
