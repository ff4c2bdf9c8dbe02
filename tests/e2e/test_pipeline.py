"""End to end: real Kafka, the API and the consumer as separate processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

import grpc
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    IsolationLevel,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from hello_core.envelope import REQUEST_CONTENT_TYPE, GreetingRequest, new_message_id, now_ms
from hello_dev.kafka import KafkaCluster
from hello_dev.pipeline import (
    DEAD_LETTER_TOPIC,
    INPUT_TOPIC,
    OUTPUT_TOPIC,
    LocalPipeline,
    ServiceProcess,
    api_process,
    consumer_process,
    wait_api_ready,
    wait_http_ready,
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


# -- SIGTERM drains the API ----------------------------------------------------

DRAIN_CALLS = 100
# How long Kafka stays frozen once the API has stopped accepting calls.
DRAIN_HOLD_SECONDS = 1.0

Outcome: TypeAlias = hello_pb2.HelloReply | grpc.aio.AioRpcError


async def say_once(stub: hello_pb2_grpc.HelloApiStub, name: str, *, timeout: float) -> Outcome:
    """One SayHello call: the reply, or the error the server answered with."""
    try:
        reply: hello_pb2.HelloReply = await stub.SayHello(
            hello_pb2.HelloRequest(name=name), timeout=timeout
        )
    except grpc.aio.AioRpcError as exc:
        return exc
    return reply


def refused_queue_full(outcome: Outcome) -> bool:
    """The API's answer when its producer queue is full (not gRPC's own limit)."""
    return (
        isinstance(outcome, grpc.aio.AioRpcError)
        and outcome.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        and "queue is full" in (outcome.details() or "")
    )


def describe(outcome: Outcome) -> str:
    if isinstance(outcome, grpc.aio.AioRpcError):
        return f"{outcome.code().name}: {outcome.details()}"
    return f"OK {outcome.message!r}"


@contextlib.contextmanager
def kafka_frozen(kafka: KafkaCluster) -> Iterator[None]:
    """SIGSTOP every Kafka node, SIGCONT on the way out: while frozen, no produce is
    acknowledged, so a call waiting for its ack stays in flight for as long as needed.
    The broker is shared with the pipeline's consumer, so keep it short: about a
    second when the test passes, bounded by the test's deadline when it does not."""
    pids = [node.process.pid for node in kafka.nodes if node.process is not None and node.running]
    assert pids, "no running kafka node"
    stopped: list[int] = []
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


@dataclass
class DrainRun:
    answered_before_sigterm: dict[str, Outcome]
    in_flight_at_sigterm: set[str]
    late: list[Outcome]
    frozen_seconds: float
    answered_before_release: set[str]
    results: dict[str, Outcome]


async def sigterm_with_calls_in_flight(
    target: str, api: ServiceProcess, kafka: KafkaCluster, *, deadline: float
) -> DrainRun:
    """Start DRAIN_CALLS calls while Kafka is frozen, SIGTERM the API once the server holds
    all of them, and release Kafka only once the API has stopped accepting calls."""
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)
        stub = hello_pb2_grpc.HelloApiStub(channel)
        calls: dict[str, asyncio.Task[Outcome]] = {}

        def start(name: str) -> asyncio.Task[Outcome]:
            calls[name] = asyncio.create_task(say_once(stub, name, timeout=120))
            return calls[name]

        frozen_at = time.monotonic()
        with kafka_frozen(kafka):
            for i in range(DRAIN_CALLS):
                start(f"drain-{i}")
            # Server-side evidence that every call is in flight: the producer queue holds
            # exactly DRAIN_CALLS records, and none can leave it while Kafka is frozen. Once
            # one call was refused because the queue is full, and every call but
            # DRAIN_CALLS has been answered, the unanswered ones are all inside the server
            # waiting for their ack (none is still on its way).
            probe: asyncio.Task[Outcome] | None = None
            probe_started = 0.0
            while True:
                answered = [t.result() for t in calls.values() if t.done()]
                unanswered = [t for t in calls.values() if not t.done()]
                full = any(refused_queue_full(o) for o in answered)
                if full and len(unanswered) == DRAIN_CALLS:
                    break
                assert time.monotonic() < deadline, (
                    f"calls not all in the server: queue full={full}, "
                    f"{len(unanswered)} unanswered of {len(calls)}; "
                    f"answers: {sorted({describe(o) for o in answered})}"
                )
                stale = probe is None or probe.done() or time.monotonic() - probe_started > 1
                if not full and stale:
                    # A probe behind the others: refused once the queue is full. If it
                    # got in instead, it is simply one more call in flight.
                    probe = start(f"drain-probe-{len(calls) - DRAIN_CALLS}")
                    probe_started = time.monotonic()
                await asyncio.wait(unanswered, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)

            answered_before_sigterm = {n: t.result() for n, t in calls.items() if t.done()}
            in_flight = {n for n, t in calls.items() if not t.done()}
            api.signal(signal.SIGTERM)

            # Server-side evidence that draining has begun while the calls still wait:
            # the API logs it, then stops accepting calls. A new call is then refused
            # (UNAVAILABLE, or CANCELLED as the server shuts down) or, arriving just as
            # it shuts down, never served (DEADLINE_EXCEEDED); before that it is
            # answered "queue full" at once, which leaves the held calls alone.
            while 'msg="api draining"' not in api.log_tail():
                assert api.running, f"the API exited:\n{api.log_tail()}"
                assert time.monotonic() < deadline, f"the API never drained:\n{api.log_tail()}"
                await asyncio.sleep(0.05)
            late: list[Outcome] = []
            while True:
                outcome = await say_once(stub, f"late-{len(late)}", timeout=2)
                late.append(outcome)
                if isinstance(outcome, grpc.aio.AioRpcError) and outcome.code() in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.CANCELLED,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    break
                assert refused_queue_full(outcome), f"late call: {describe(outcome)}"
                assert time.monotonic() < deadline, "the API never stopped accepting calls"
                await asyncio.sleep(0.05)
            # Not a wait for anything: a window in which a server that gave up on its
            # in-flight calls (instead of granting them the grace period) would be caught.
            await asyncio.sleep(DRAIN_HOLD_SECONDS)
            answered_before_release = {n for n in in_flight if calls[n].done()}
        frozen_seconds = time.monotonic() - frozen_at

        # Kafka thawed: the held calls get their acks, then the API exits.
        remaining = max(deadline - time.monotonic(), 30)
        await asyncio.wait_for(asyncio.gather(*(calls[n] for n in in_flight)), timeout=remaining)
        return DrainRun(
            answered_before_sigterm=answered_before_sigterm,
            in_flight_at_sigterm=in_flight,
            late=late,
            frozen_seconds=frozen_seconds,
            answered_before_release=answered_before_release,
            results={n: calls[n].result() for n in in_flight},
        )


def test_sigterm_drains_in_flight_calls_and_exits_zero(pipeline: LocalPipeline) -> None:
    kafka = pipeline.kafka
    assert kafka is not None
    # Its own topic, so the pipeline's consumer and the other tests never see these.
    topic = f"drain-{uuid.uuid4().hex[:8]}"
    kafka.create_topics({topic: pipeline.partitions})
    port = free_port()
    api = api_process(
        bootstrap_servers=kafka.bootstrap_servers,
        port=port,
        log_dir=pipeline.workdir / topic,
        extra_env={
            "HELLO_API_TOPIC": topic,
            # Room for exactly the calls under test: a further call is refused with
            # RESOURCE_EXHAUSTED once all of them wait in the server.
            "HELLO_API_MAX_QUEUE_MESSAGES": str(DRAIN_CALLS),
            # Kafka is frozen while the calls wait: no delivery timeout meanwhile.
            "HELLO_API_DELIVERY_TIMEOUT_MS": "120000",
            "HELLO_API_SHUTDOWN_GRACE_SECONDS": "60",
        },
    )
    api.start()
    try:
        wait_api_ready(api, port)
        run = asyncio.run(
            sigterm_with_calls_in_flight(
                f"127.0.0.1:{port}", api, kafka, deadline=time.monotonic() + 60
            )
        )
        assert api.process is not None
        exit_code = api.process.wait(60)
    finally:
        api.stop()
    log = api.log_tail()

    # Before SIGTERM, the only answers were "queue full"; DRAIN_CALLS calls were in flight.
    early = {n: describe(o) for n, o in run.answered_before_sigterm.items()}
    assert all(refused_queue_full(o) for o in run.answered_before_sigterm.values()), early
    assert len(run.in_flight_at_sigterm) == DRAIN_CALLS
    # The server had stopped accepting calls, and still held every one of them.
    assert run.answered_before_release == set()
    # Each in-flight call was answered with its greeting, then the API exited cleanly.
    failures = {n: describe(o) for n, o in run.results.items() if isinstance(o, Exception)}
    assert failures == {}
    replies = {n: o for n, o in run.results.items() if isinstance(o, hello_pb2.HelloReply)}
    for name, reply in replies.items():
        assert reply.message == f"Hello, {name}!"
        assert reply.topic == topic
    assert exit_code == 0, log
    assert 'msg="api stopped" undelivered=0' in log
    print(
        f"\nin flight at SIGTERM: {len(run.in_flight_at_sigterm)} "
        f"(refused as queue full before: {len(run.answered_before_sigterm)}, "
        f"late calls: {[describe(o) for o in run.late]}; "
        f"kafka frozen for {run.frozen_seconds:.2f}s)"
    )

    # Each acknowledged call was written once, where its reply says.
    records = read_topic(
        kafka.bootstrap_servers, topic, keys={r.message_id.encode() for r in replies.values()}
    )
    written: dict[bytes | None, list[tuple[int | None, int | None]]] = {}
    for record in records:
        written.setdefault(record.key(), []).append((record.partition(), record.offset()))
    assert len(records) == DRAIN_CALLS
    for reply in replies.values():
        assert written[reply.message_id.encode()] == [(reply.partition, reply.offset)]


# -- SIGTERM stops the consumer cleanly -----------------------------------------

RECORDS_PER_PARTITION = 40


def produce_requests(
    bootstrap: str, topic: str, *, partitions: int, per_partition: int, prefix: str
) -> dict[str, tuple[int, int]]:
    """Greeting requests, as the API writes them, ``per_partition`` to each partition;
    ``{message id: (partition, offset)}``."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    positions: dict[str, tuple[int, int]] = {}
    errors: list[str] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(error.str())
        else:
            key = message.key()
            assert key is not None
            positions[key.decode()] = (int(message.partition() or 0), int(message.offset() or 0))

    for partition in range(partitions):
        for i in range(per_partition):
            request = GreetingRequest(
                id=new_message_id(), name=f"{prefix}-{partition}-{i}", produced_at_ms=now_ms()
            )
            producer.produce(
                topic,
                key=request.id.encode(),
                value=request.encode(),
                headers=[("content-type", REQUEST_CONTENT_TYPE.encode())],
                partition=partition,
                on_delivery=delivered,
            )
    assert producer.flush(30) == 0
    assert errors == []
    assert len(positions) == partitions * per_partition
    return positions


def partition_offsets(
    admin: AdminClient, partitions: list[TopicPartition], isolation: IsolationLevel
) -> dict[int, int]:
    futures = admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in partitions}, isolation_level=isolation
    )
    return {tp.partition: future.result(10).offset for tp, future in futures.items()}


def test_consumer_sigterm_commits_and_leaves_the_group(pipeline: LocalPipeline) -> None:
    kafka = pipeline.kafka
    assert kafka is not None
    bootstrap = kafka.bootstrap_servers
    # Its own topics and group: nothing here depends on what other tests produced or
    # on the state they left the pipeline's consumer in.
    name = f"stop-{uuid.uuid4().hex[:8]}"
    input_topic, output_topic, dead_letter_topic = name, f"{name}.greetings", f"{name}.dlt"
    kafka.create_topics(
        {input_topic: pipeline.partitions, output_topic: pipeline.partitions, dead_letter_topic: 1}
    )
    http_port = free_port()
    consumer = consumer_process(
        bootstrap_servers=bootstrap,
        http_port=http_port,
        log_dir=pipeline.workdir / name,
        extra_env={
            "HELLO_CONSUMER_INPUT_TOPIC": input_topic,
            "HELLO_CONSUMER_OUTPUT_TOPIC": output_topic,
            "HELLO_CONSUMER_DEAD_LETTER_TOPIC": dead_letter_topic,
            "HELLO_CONSUMER_GROUP_ID": name,
            "HELLO_CONSUMER_TRANSACTIONAL_ID": f"{name}-0",
            # Far longer than this test: a member still in the group after the process
            # exited did not leave, and a transaction still open was not committed;
            # neither is cleaned up by the broker's timeouts while we look.
            "HELLO_CONSUMER_SESSION_TIMEOUT_MS": "120000",
            "HELLO_CONSUMER_MAX_POLL_INTERVAL_MS": "120000",
            "HELLO_CONSUMER_TRANSACTION_TIMEOUT_MS": "120000",
        },
    )
    consumer.start()
    try:
        wait_http_ready(consumer, http_port)
        processed = produce_requests(
            bootstrap,
            input_topic,
            partitions=pipeline.partitions,
            per_partition=RECORDS_PER_PARTITION,
            prefix="before-stop",
        )
        # Their greetings visible to a read_committed reader: the transactions that
        # wrote them have committed, and with them the consumed offsets.
        read_topic(bootstrap, output_topic, keys={i.encode() for i in processed})
        # More records just before SIGTERM, so it may well arrive in the middle of a
        # batch. Where it lands is left to chance; what is checked below holds for any.
        racing = produce_requests(
            bootstrap,
            input_topic,
            partitions=pipeline.partitions,
            per_partition=RECORDS_PER_PARTITION,
            prefix="at-stop",
        )
        consumer.signal(signal.SIGTERM)
        assert consumer.process is not None
        exit_code = consumer.process.wait(60)
    finally:
        consumer.stop()
    log = consumer.log_path.read_text(errors="replace")
    assert exit_code == 0, log
    events = [
        "signal received, finishing current batch",
        "consumer leaving group",
        "consumer stopped",
    ]
    positions = [log.find(f'msg="{event}"') for event in events]
    assert -1 not in positions and positions == sorted(positions), log
    assert "leaving the group failed" not in log and "batch failed" not in log, log

    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Left the group: no member waits for a session timeout to be removed.
    # (LeaveGroup may still be on its way when the process exits, but well within the
    # two-minute session timeout that would otherwise be the only way out.)
    deadline = time.monotonic() + 10
    while True:
        group = admin.describe_consumer_groups([name], request_timeout=10)[name].result()
        members = [m.member_id for m in group.members]
        if (group.state, members) == (ConsumerGroupState.EMPTY, []):
            break
        assert time.monotonic() < deadline, f"still in the group: {group.state} {members}"
        time.sleep(0.2)

    # Consumer.committed rather than AdminClient.list_consumer_group_offsets,
    # which crashes librdkafka 2.16.0 while a group coordinator is loading.
    inputs = [TopicPartition(input_topic, p) for p in range(pipeline.partitions)]
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": name})
    try:
        committed = {tp.partition: tp.offset for tp in reader.committed(inputs, timeout=10)}
    finally:
        reader.close()
    ends = partition_offsets(admin, inputs, IsolationLevel.READ_UNCOMMITTED)
    assert ends == dict.fromkeys(range(pipeline.partitions), 2 * RECORDS_PER_PARTITION)
    for p in range(pipeline.partitions):
        # Everything processed before SIGTERM stays committed; at most what was produced.
        assert RECORDS_PER_PARTITION <= committed[p] <= ends[p], (p, committed[p], ends[p])

    # The committed offsets and the greetings agree: a greeting, exactly one, for each
    # record below its partition's committed offset, none for any record past it.
    sent = {**processed, **racing}
    expected = {i for i, (p, offset) in sent.items() if offset < committed[p]}
    records = read_topic(bootstrap, output_topic, keys={i.encode() for i in expected})
    _, counts = greetings_by_id(records)
    assert set(counts) == expected
    assert {i: c for i, c in counts.items() if c > 1} == {}
    print(f"\nrecords produced just before SIGTERM and committed: {len(expected & set(racing))}")

    # No transaction left open: the output's last stable offset reaches its end.
    outputs = [TopicPartition(output_topic, p) for p in range(pipeline.partitions)]
    deadline = time.monotonic() + 15
    while True:
        stable = partition_offsets(admin, outputs, IsolationLevel.READ_COMMITTED)
        latest = partition_offsets(admin, outputs, IsolationLevel.READ_UNCOMMITTED)
        if stable == latest or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stable == latest, "a transaction of the stopped consumer is still open"
