"""A broker that stops answering for longer than the session and transaction timeouts."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from hello_consumer import loop as loop_module
from hello_consumer.loop import ConsumerLoop
from hello_consumer.settings import ConsumerSettings
from hello_core import envelope
from hello_core.envelope import GreetingRequest
from hello_core.settings import KafkaSettings
from hello_dev.kafka import KafkaCluster
from hello_dev.pipeline import OUTPUT_TOPIC, LocalPipeline, consumer_process, wait_http_ready
from hello_dev.ports import free_port
from hello_proto import hello_pb2
from tests.e2e.kafka_reader import greetings_by_id, read_topic
from tests.e2e.test_pipeline import say_many


@pytest.fixture
def stalled_pipeline(tmp_path: pathlib.Path) -> Iterator[LocalPipeline]:
    with LocalPipeline(workdir=tmp_path, consumers=1, partitions=3) as running:
        yield running


def test_consumer_recovers_by_itself_after_the_broker_freezes_past_the_session_timeout(
    stalled_pipeline: LocalPipeline,
) -> None:
    pipeline = stalled_pipeline
    assert pipeline.kafka is not None
    broker = pipeline.kafka.nodes[0].process
    assert broker is not None
    names = [f"stall-{i}" for i in range(300)]

    async def load_with_a_frozen_broker() -> list[tuple[str, object]]:
        calls = asyncio.ensure_future(say_many(pipeline.api_target, names[:150], concurrency=8))
        await asyncio.sleep(0.5)
        os.kill(broker.pid, signal.SIGSTOP)
        # Longer than the consumer's 10 s session timeout: the group drops it.
        await asyncio.sleep(13)
        os.kill(broker.pid, signal.SIGCONT)
        first = await calls
        return first + await say_many(pipeline.api_target, names[150:], concurrency=8)

    try:
        results = asyncio.run(load_with_a_frozen_broker())
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    replies = {r.message_id for _, r in results if isinstance(r, hello_pb2.HelloReply)}
    assert len(replies) >= 150  # the calls after the freeze all succeed

    started = time.monotonic()
    records = read_topic(
        pipeline.kafka.bootstrap_servers,
        OUTPUT_TOPIC,
        keys={i.encode() for i in replies},
        timeout=120,
    )
    _, counts = greetings_by_id(records)
    ours = {i: c for i, c in counts.items() if i in replies}
    assert set(replies) - set(ours) == set(), (
        f"not processed after {time.monotonic() - started:.0f}s:\n"
        + pipeline.consumer_services[0].log_tail()
    )
    assert {i: c for i, c in ours.items() if c > 1} == {}
    assert pipeline.consumer_services[0].running, "the consumer recovered without a restart"


@pytest.fixture(scope="module")
def own_broker() -> Iterator[KafkaCluster]:
    """A broker of these tests' own: freezing the shared one would stall other tests."""
    with KafkaCluster(brokers=1) as cluster:
        yield cluster


def fresh_topics(cluster: KafkaCluster) -> tuple[dict[str, str], str]:
    suffix = uuid.uuid4().hex[:8]
    topics = {"input": f"in-{suffix}", "output": f"out-{suffix}", "dlt": f"dlt-{suffix}"}
    cluster.create_topics({topics["input"]: 3, topics["output"]: 3, topics["dlt"]: 1})
    return topics, suffix


def produce_requests(cluster: KafkaCluster, topic: str, count: int) -> list[str]:
    """Write ``count`` greeting requests as the API would; returns their message ids."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for message_id in ids:
        producer.produce(
            topic, GreetingRequest(message_id, "Ada", envelope.now_ms()).encode(), key=message_id
        )
    assert producer.flush(30) == 0
    return ids


# Where in the end of a transaction the broker freezes: before the commit
# request leaves, and a moment after (so the coordinator may already have it,
# and the batch lands although the client never hears so).
FREEZE_POINTS = {
    "before-send-offsets": ("send_offsets_to_transaction", 0.0),
    "before-commit": ("commit_transaction", 0.0),
    "during-commit": ("commit_transaction", 0.003),
}


@pytest.mark.parametrize("point", sorted(FREEZE_POINTS))
def test_a_freeze_while_a_transaction_ends_loses_and_repeats_nothing(
    own_broker: KafkaCluster, point: str
) -> None:
    method, delay = FREEZE_POINTS[point]
    node = own_broker.nodes[0].process
    assert node is not None
    topics, suffix = fresh_topics(own_broker)
    ids = produce_requests(own_broker, topics["input"], 60)

    frozen: list[float] = []

    class FreezingProducer(Producer):  # type: ignore[misc]
        """The real producer; it only freezes the broker once, at ``method``."""

    def freeze_then(name: str) -> Any:
        real = getattr(Producer, name)

        def call(self: Producer, *args: Any) -> Any:
            if not frozen:
                frozen.append(time.monotonic())
                threading.Timer(delay, os.kill, (node.pid, signal.SIGSTOP)).start()
                threading.Timer(delay + 13, os.kill, (node.pid, signal.SIGCONT)).start()
            return real(self, *args)

        return call

    setattr(FreezingProducer, method, freeze_then(method))
    settings = ConsumerSettings(
        input_topic=topics["input"],
        output_topic=topics["output"],
        dead_letter_topic=topics["dlt"],
        group_id=f"group-{suffix}",
        batch_max_messages=10,
        kafka=KafkaSettings(bootstrap_servers=own_broker.bootstrap_servers),
    )
    consumer_loop = ConsumerLoop(settings)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            consumer_loop.run()
        except BaseException as exc:  # reported by the assertions below
            errors.append(exc)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop_module, "Producer", FreezingProducer)
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            records = read_topic(
                own_broker.bootstrap_servers,
                topics["output"],
                keys={i.encode() for i in ids},
                timeout=120,
            )
        finally:
            consumer_loop.stopping.set()
            worker.join(60)
            os.kill(node.pid, signal.SIGCONT)
    assert frozen, f"the broker was never frozen at {method}"
    assert errors == []
    assert not worker.is_alive()
    _, counts = greetings_by_id(records)
    assert set(ids) - set(counts) == set()
    assert {i: c for i, c in counts.items() if c > 1} == {}


def test_sigterm_with_the_broker_frozen_exits_within_the_grace_and_loses_nothing(
    own_broker: KafkaCluster, tmp_path: pathlib.Path
) -> None:
    # A Kafka call blocks the loop thread; the main thread still hears SIGTERM
    # and gives up after HELLO_CONSUMER_SHUTDOWN_GRACE_SECONDS.
    node = own_broker.nodes[0].process
    assert node is not None
    topics, suffix = fresh_topics(own_broker)
    ids = produce_requests(own_broker, topics["input"], 400)
    env = {
        "HELLO_CONSUMER_INPUT_TOPIC": topics["input"],
        "HELLO_CONSUMER_OUTPUT_TOPIC": topics["output"],
        "HELLO_CONSUMER_DEAD_LETTER_TOPIC": topics["dlt"],
        "HELLO_CONSUMER_GROUP_ID": f"group-{suffix}",
        "HELLO_CONSUMER_TRANSACTIONAL_ID": f"txn-{suffix}",
        # One record per transaction: the loop spends its time in Kafka calls.
        "HELLO_CONSUMER_BATCH_MAX_MESSAGES": "1",
        "HELLO_CONSUMER_SHUTDOWN_GRACE_SECONDS": "3",
    }
    port = free_port()
    first = consumer_process(
        bootstrap_servers=own_broker.bootstrap_servers,
        http_port=port,
        log_dir=tmp_path,
        extra_env=env,
    )
    first.start()
    try:
        wait_http_ready(first, port)
        time.sleep(1)  # transactions under way
        os.kill(node.pid, signal.SIGSTOP)
        time.sleep(0.5)
        asked = time.monotonic()
        first.signal(signal.SIGTERM)
        assert first.process is not None
        code = first.process.wait(timeout=30)
        took = time.monotonic() - asked
    finally:
        os.kill(node.pid, signal.SIGCONT)
        first.stop()
    log = first.log_tail(20_000)
    assert took < 3 + 5, f"exited {took:.1f}s after SIGTERM:\n{log}"
    assert code == 1, log
    assert "consumer loop stuck" in log and "did not stop within 3s" in log, log

    # Nothing of the abandoned transaction is visible, and a new instance
    # with the same transactional id finishes the work exactly once.
    port = free_port()
    second = consumer_process(
        bootstrap_servers=own_broker.bootstrap_servers,
        http_port=port,
        log_dir=tmp_path,
        index=1,
        extra_env={**env, "HELLO_CONSUMER_BATCH_MAX_MESSAGES": "500"},
    )
    second.start()
    try:
        records = read_topic(
            own_broker.bootstrap_servers,
            topics["output"],
            keys={i.encode() for i in ids},
            timeout=120,
        )
    finally:
        second.stop()
    _, counts = greetings_by_id(records)
    assert set(ids) - set(counts) == set(), second.log_tail()
    assert {i: c for i, c in counts.items() if c > 1} == {}
