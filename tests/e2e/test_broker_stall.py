"""A broker that stops answering for longer than the group session timeout."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import time
from collections.abc import Iterator

import pytest

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
