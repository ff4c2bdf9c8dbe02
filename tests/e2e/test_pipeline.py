"""End to end: real Kafka, the API and the consumer as separate processes."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time

import grpc
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from hello_dev.pipeline import (
    DEAD_LETTER_TOPIC,
    INPUT_TOPIC,
    OUTPUT_TOPIC,
    LocalPipeline,
    api_process,
    wait_api_ready,
)
from hello_dev.ports import free_port
from hello_proto import hello_pb2, hello_pb2_grpc
from tests.e2e.kafka_reader import greetings_by_id, read_topic

CALLS = 2000
CONCURRENCY = 64


async def say_many(target: str, names: list[str], *, concurrency: int) -> list[tuple[str, object]]:
    """Call SayHello for every name, ``concurrency`` at a time; (name, reply or error) each."""
    results: list[tuple[str, object]] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in names:
        queue.put_nowait(name)
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = hello_pb2_grpc.HelloApiStub(channel)

        async def worker() -> None:
            while not queue.empty():
                name = queue.get_nowait()
                started = time.perf_counter()
                try:
                    reply = await stub.SayHello(hello_pb2.HelloRequest(name=name), timeout=30)
                    latencies.append(time.perf_counter() - started)
                    results.append((name, reply))
                except grpc.aio.AioRpcError as exc:
                    results.append((name, exc))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if latencies:
        latencies.sort()
        print(
            f"\ncalls={len(names)} ok={len(latencies)} "
            f"p50_ms={statistics.median(latencies) * 1000:.1f} "
            f"p99_ms={latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f}"
        )
    return results


def test_every_acknowledged_call_is_written_exactly_once(pipeline: LocalPipeline) -> None:
    assert pipeline.kafka is not None
    names = [f"user-{i}" for i in range(CALLS)]
    started = time.perf_counter()
    results = asyncio.run(say_many(pipeline.api_target, names, concurrency=CONCURRENCY))
    elapsed = time.perf_counter() - started
    print(f"throughput_calls_per_s={CALLS / elapsed:.0f}")

    failures = [(n, r) for n, r in results if not isinstance(r, hello_pb2.HelloReply)]
    assert failures == []
    replies = {r.message_id: (n, r) for n, r in results if isinstance(r, hello_pb2.HelloReply)}
    assert len(replies) == CALLS, "message ids must be unique"
    for name, reply in replies.values():
        assert reply.message == f"Hello, {name}!"

    records = read_topic(
        pipeline.kafka.bootstrap_servers, OUTPUT_TOPIC, keys={i.encode() for i in replies}
    )
    greetings, counts = greetings_by_id(records)
    ours = {i: c for i, c in counts.items() if i in replies}
    lost = set(replies) - set(ours)
    duplicated = {i: c for i, c in ours.items() if c > 1}
    assert lost == set()
    assert duplicated == {}
    for message_id, (name, reply) in replies.items():
        greeting = greetings[message_id]
        assert greeting.name == name
        assert greeting.greeting == f"Hello, {name}!"
        assert (greeting.source.topic, greeting.source.partition, greeting.source.offset) == (
            INPUT_TOPIC,
            reply.partition,
            reply.offset,
        )
    e2e = sorted(g.processed_at_ms - g.produced_at_ms for i, g in greetings.items() if i in replies)
    print(f"end_to_end_ms p50={e2e[len(e2e) // 2]} p99={e2e[int(len(e2e) * 0.99) - 1]}")


def test_undecodable_record_goes_to_the_dead_letter_topic_and_processing_continues(
    pipeline: LocalPipeline,
) -> None:
    assert pipeline.kafka is not None
    producer = Producer({"bootstrap.servers": pipeline.kafka.bootstrap_servers})
    producer.produce(INPUT_TOPIC, key=b"poison", value=b"\x00not-an-envelope", partition=0)
    assert producer.flush(10) == 0

    after = asyncio.run(say_many(pipeline.api_target, ["after-poison"], concurrency=1))
    reply = after[0][1]
    assert isinstance(reply, hello_pb2.HelloReply)

    dead = read_topic(pipeline.kafka.bootstrap_servers, DEAD_LETTER_TOPIC, keys={b"poison"})
    poison = [m for m in dead if m.key() == b"poison"]
    assert len(poison) == 1
    headers = dict(poison[0].headers() or [])
    assert poison[0].value() == b"\x00not-an-envelope"
    assert headers["dlt.source.topic"] == INPUT_TOPIC.encode()
    assert headers["dlt.source.partition"] == b"0"
    assert headers["dlt.error.class"] == b"EnvelopeError"

    records = read_topic(
        pipeline.kafka.bootstrap_servers, OUTPUT_TOPIC, keys={reply.message_id.encode()}
    )
    _, counts = greetings_by_id(records)
    assert counts[reply.message_id] == 1


def test_consumer_killed_mid_stream_resumes_without_loss_or_duplicates(
    pipeline: LocalPipeline,
) -> None:
    assert pipeline.kafka is not None
    consumer = pipeline.consumer_services[0]
    names = [f"crash-{i}" for i in range(1500)]

    async def load_and_kill() -> list[tuple[str, object]]:
        calls = asyncio.ensure_future(say_many(pipeline.api_target, names, concurrency=32))
        await asyncio.sleep(0.5)
        consumer.signal(signal.SIGKILL)
        return await calls

    results = asyncio.run(load_and_kill())
    assert consumer.process is not None and consumer.process.wait(10) == -signal.SIGKILL
    # Same transactional id: the new instance fences the old one and aborts
    # its open transaction at once.
    restarted = pipeline.start_consumer(0)
    replies = {r.message_id for _, r in results if isinstance(r, hello_pb2.HelloReply)}
    assert len(replies) == len(names)

    records = read_topic(
        pipeline.kafka.bootstrap_servers, OUTPUT_TOPIC, keys={i.encode() for i in replies}
    )
    _, counts = greetings_by_id(records)
    ours = {i: c for i, c in counts.items() if i in replies}
    assert set(replies) - set(ours) == set()
    assert {i: c for i, c in ours.items() if c > 1} == {}
    assert restarted.running


def test_sigterm_drains_in_flight_calls_and_exits_zero(pipeline: LocalPipeline) -> None:
    assert pipeline.kafka is not None
    port = free_port()
    # A long linger keeps each call waiting for its ack, so they are in flight at SIGTERM.
    api = api_process(
        bootstrap_servers=pipeline.kafka.bootstrap_servers,
        port=port,
        log_dir=pipeline.workdir / "drain",
        extra_env={"HELLO_API_LINGER_MS": "800", "HELLO_API_SHUTDOWN_GRACE_SECONDS": "10"},
    )
    api.start()
    try:
        wait_api_ready(api, port)

        async def load_and_terminate() -> list[tuple[str, object]]:
            calls = asyncio.ensure_future(
                say_many(f"127.0.0.1:{port}", [f"drain-{i}" for i in range(100)], concurrency=100)
            )
            await asyncio.sleep(0.3)
            api.signal(signal.SIGTERM)
            return await calls

        results = asyncio.run(load_and_terminate())
        assert api.process is not None
        assert api.process.wait(30) == 0
    finally:
        api.stop()
    failures = [(n, r) for n, r in results if not isinstance(r, hello_pb2.HelloReply)]
    assert failures == []
    assert 'msg="api stopped" undelivered=0' in api.log_tail()


def test_consumer_sigterm_commits_and_leaves_the_group(pipeline: LocalPipeline) -> None:
    assert pipeline.kafka is not None
    consumer = pipeline.consumer_services[-1]
    consumer.signal(signal.SIGTERM)
    assert consumer.process is not None and consumer.process.wait(30) == 0
    log = consumer.log_tail()
    assert "consumer leaving group" in log and "consumer stopped" in log

    # Consumer.committed rather than AdminClient.list_consumer_group_offsets,
    # which crashes librdkafka 2.16.0 while a group coordinator is loading.
    partitions = [TopicPartition(INPUT_TOPIC, p) for p in range(pipeline.partitions)]
    reader = Consumer(
        {"bootstrap.servers": pipeline.kafka.bootstrap_servers, "group.id": "hello-consumer"}
    )
    try:
        committed = {tp.partition: tp.offset for tp in reader.committed(partitions, timeout=10)}
    finally:
        reader.close()
    admin = AdminClient({"bootstrap.servers": pipeline.kafka.bootstrap_servers})
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions})
    checked = 0
    for tp, future in ends.items():
        end = future.result(10).offset
        if end > 0:
            checked += 1
            assert committed.get(tp.partition) == end, f"partition {tp.partition} not committed"
    assert checked == pipeline.partitions
