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
from hello_dev.pipeline import OUTPUT_TOPIC, LocalPipeline
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
    suffix = uuid.uuid4().hex[:8]
    topics = {"input": f"in-{suffix}", "output": f"out-{suffix}", "dlt": f"dlt-{suffix}"}
    own_broker.create_topics({topics["input"]: 3, topics["output"]: 3, topics["dlt"]: 1})
    ids = [uuid.uuid4().hex for _ in range(60)]
    producer = Producer({"bootstrap.servers": own_broker.bootstrap_servers})
    for message_id in ids:
        producer.produce(
            topics["input"],
            GreetingRequest(message_id, "Ada", envelope.now_ms()).encode(),
            key=message_id,
        )
    assert producer.flush(30) == 0

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
