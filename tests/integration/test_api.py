"""The API against a real broker: replies, status codes, health and reflection."""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator

import grpc
import pytest
from confluent_kafka import Consumer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from hello_api.client import hint_for
from hello_api.server import MAX_REQUEST_BYTES, ApiServer
from hello_api.settings import ApiSettings
from hello_core.envelope import GreetingRequest
from hello_core.settings import KafkaSettings
from hello_dev.kafka import KafkaCluster
from hello_dev.ports import free_port
from hello_proto import hello_pb2, hello_pb2_grpc

TOPIC = "api-test-topic"

# The original five-line contract; a client generated from it must keep working.
LEGACY_PROTO = textwrap.dedent(
    """\
    syntax = "proto3";
    package hello;
    service HelloApi { rpc SayHello (HelloRequest) returns (HelloReply); }
    message HelloRequest { string name = 1; }
    message HelloReply { string message = 1; }
    """
)


def settings_for(bootstrap: str, **overrides: object) -> ApiSettings:
    return ApiSettings(
        listen_address=f"127.0.0.1:{free_port()}",
        topic=TOPIC,
        http_port=0,
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        **overrides,  # type: ignore[arg-type]
    )


async def running(settings: ApiSettings) -> AsyncIterator[tuple[ApiServer, grpc.aio.Channel]]:
    api = ApiServer(settings)
    await api.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{api.port}")
    try:
        yield api, channel
    finally:
        await channel.close()
        await api.stop()


@pytest.fixture
async def api(kafka: KafkaCluster) -> AsyncIterator[tuple[ApiServer, grpc.aio.Channel]]:
    kafka.create_topics({TOPIC: 2})
    async for pair in running(settings_for(kafka.bootstrap_servers)):
        yield pair


@pytest.fixture
async def api_without_broker() -> AsyncIterator[tuple[ApiServer, grpc.aio.Channel]]:
    dead = f"127.0.0.1:{free_port()}"
    settings = settings_for(
        dead, delivery_timeout_ms=1500, ack_stall_seconds=1.0, max_queue_messages=1
    )
    settings.shutdown_grace_seconds = 1
    async for pair in running(settings):
        yield pair


def calls(code: str) -> float:
    return REGISTRY.get_sample_value("hello_api_calls_total", {"code": code}) or 0.0


async def until(check: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Wait for ``check`` to hold; a busy machine may take a while."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout:g}s")
        await asyncio.sleep(0.02)


async def test_reply_comes_after_the_broker_stored_the_message(
    api: tuple[ApiServer, grpc.aio.Channel], kafka: KafkaCluster
) -> None:
    _, channel = api
    stub = hello_pb2_grpc.HelloApiStub(channel)
    reply = await stub.SayHello(hello_pb2.HelloRequest(name="Zoë"), timeout=10)
    assert reply.message == "Hello, Zoë!"
    assert reply.topic == TOPIC
    assert len(reply.message_id) == 32

    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": "api-test-reader"}
    )
    from confluent_kafka import TopicPartition

    consumer.assign([TopicPartition(TOPIC, reply.partition, reply.offset)])
    message = await asyncio.to_thread(consumer.poll, 10)
    consumer.close()
    assert message is not None and message.error() is None
    assert message.key() == reply.message_id.encode()
    request = GreetingRequest.decode(message.value())
    assert (request.id, request.name) == (reply.message_id, "Zoë")
    headers = dict(message.headers() or [])
    assert headers["content-type"] == b"application/vnd.hello.greeting-request.v1+json"
    assert message.timestamp()[1] == request.produced_at_ms


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("", "name must not be empty or only whitespace"),
        ("x" * 300, "name is 300 code points long; the maximum is 256"),
        ("bell\x07", "name contains control character U+0007 at position 4"),
    ],
)
async def test_bad_names_are_invalid_argument_with_the_reason(
    api: tuple[ApiServer, grpc.aio.Channel], name: str, detail: str
) -> None:
    stub = hello_pb2_grpc.HelloApiStub(api[1])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SayHello(hello_pb2.HelloRequest(name=name), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == detail


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x0a\x02\xff\xfe", "String field had bad UTF-8"),
        (b"\xff\xff\xff\xff", "Wire format was corrupt"),
    ],
)
async def test_undecodable_request_is_invalid_argument_without_a_traceback(
    api: tuple[ApiServer, grpc.aio.Channel],
    caplog: pytest.LogCaptureFixture,
    data: bytes,
    reason: str,
) -> None:
    say_hello = api[1].unary_unary(
        "/hello.HelloApi/SayHello",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    before = calls("INVALID_ARGUMENT")
    with caplog.at_level(logging.DEBUG), pytest.raises(grpc.aio.AioRpcError) as info:
        await say_hello(data, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == (
        "request is not a valid hello.HelloRequest: "
        f"Error parsing message with type 'hello.HelloRequest': {reason}"
    )
    assert calls("INVALID_ARGUMENT") == before + 1
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


async def test_request_over_64_kib_is_refused_by_grpc_as_too_large(
    api: tuple[ApiServer, grpc.aio.Channel],
) -> None:
    stub = hello_pb2_grpc.HelloApiStub(api[1])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SayHello(hello_pb2.HelloRequest(name="x" * (MAX_REQUEST_BYTES + 1)), timeout=5)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.details() == (
        "SERVER: Received message larger than max "
        f"({MAX_REQUEST_BYTES + 5} vs. {MAX_REQUEST_BYTES})"
    )
    assert hint_for(info.value.code(), info.value.details() or "") == (
        "the request is larger than the API accepts; do not retry, shorten the name"
    )


async def test_repeated_publish_failures_log_one_line_per_interval(
    api_without_broker: tuple[ApiServer, grpc.aio.Channel], caplog: pytest.LogCaptureFixture
) -> None:
    stub = hello_pb2_grpc.HelloApiStub(api_without_broker[1])
    with caplog.at_level(logging.WARNING, logger="hello_api.server"):
        results = await asyncio.gather(
            *(stub.SayHello(hello_pb2.HelloRequest(name=f"n{i}"), timeout=10) for i in range(5)),
            return_exceptions=True,
        )
    assert all(isinstance(r, grpc.aio.AioRpcError) for r in results)
    warnings = [r for r in caplog.records if r.name == "hello_api.server"]
    # The first failure of each kind is logged; the rest fall in the same 5 s window.
    assert len(warnings) <= 2
    assert warnings[0].getMessage() in {"publish failed", "producer queue full"}
    assert getattr(warnings[0], "suppressed", None) == 0


async def test_broker_down_is_unavailable(
    api_without_broker: tuple[ApiServer, grpc.aio.Channel],
) -> None:
    stub = hello_pb2_grpc.HelloApiStub(api_without_broker[1])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SayHello(hello_pb2.HelloRequest(name="Ada"), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Kafka did not acknowledge the message" in (info.value.details() or "")


async def test_full_producer_queue_is_resource_exhausted(
    api_without_broker: tuple[ApiServer, grpc.aio.Channel],
) -> None:
    api, channel = api_without_broker
    stub = hello_pb2_grpc.HelloApiStub(channel)
    # The first call fills the one-message queue while no broker answers.
    first = asyncio.ensure_future(stub.SayHello(hello_pb2.HelloRequest(name="a"), timeout=10))
    await until(lambda: api.publisher.waiting == 1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SayHello(hello_pb2.HelloRequest(name="b"), timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue is full" in (info.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError):
        await first


async def test_client_deadline_is_honoured_by_the_server(
    api_without_broker: tuple[ApiServer, grpc.aio.Channel],
) -> None:
    _, channel = api_without_broker
    await channel.channel_ready()  # the deadline is for the call, not for connecting
    stub = hello_pb2_grpc.HelloApiStub(channel)
    before = {code: calls(code) for code in ("DEADLINE_EXCEEDED", "CANCELLED", "UNAVAILABLE")}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SayHello(hello_pb2.HelloRequest(name="Ada"), timeout=0.4)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The handler ended at the deadline: its own timer (DEADLINE_EXCEEDED) and
    # gRPC's cancellation of the call (CANCELLED) fire at the same instant, and
    # either may win on a busy machine. It did not go on to wait out the 1.5 s
    # delivery timeout (UNAVAILABLE).
    ended = lambda: sum(calls(c) - before[c] for c in ("DEADLINE_EXCEEDED", "CANCELLED"))  # noqa: E731
    await until(lambda: ended() == 1)
    await asyncio.sleep(2)  # past the delivery timeout
    assert calls("UNAVAILABLE") == before["UNAVAILABLE"]
    assert ended() == 1


async def test_health_and_reflection_are_served(api: tuple[ApiServer, grpc.aio.Channel]) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    health = health_pb2_grpc.HealthStub(api[1])
    for service in ("", "hello.HelloApi"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(f"127.0.0.1:{api[0].port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = await asyncio.to_thread(lambda: set(database.get_services()))
    assert {"hello.HelloApi", "grpc.health.v1.Health"} <= services


async def test_client_generated_from_the_original_five_line_proto_gets_its_reply(
    api: tuple[ApiServer, grpc.aio.Channel], tmp_path: pathlib.Path
) -> None:
    (tmp_path / "hello.proto").write_text(LEGACY_PROTO)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{tmp_path}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(tmp_path / "hello.proto"),
        ],
        check=True,
    )
    script = textwrap.dedent(
        f"""\
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import grpc, hello_pb2, hello_pb2_grpc
        with grpc.insecure_channel("127.0.0.1:{api[0].port}") as channel:
            reply = hello_pb2_grpc.HelloApiStub(channel).SayHello(
                hello_pb2.HelloRequest(name="Legacy"), timeout=10)
        print(reply.message)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, Legacy!\n"


async def test_a_call_the_client_cancels_is_counted_as_cancelled(
    api_without_broker: tuple[ApiServer, grpc.aio.Channel],
) -> None:
    stub = hello_pb2_grpc.HelloApiStub(api_without_broker[1])
    before = calls("CANCELLED")
    call = stub.SayHello(hello_pb2.HelloRequest(name="Ada"), timeout=10)
    # The server is now waiting for an ack that cannot come.
    await until(lambda: api_without_broker[0].publisher.waiting == 1)
    call.cancel()
    await until(lambda: calls("CANCELLED") == before + 1)


@pytest.fixture
def own_broker() -> Iterator[KafkaCluster]:
    """A broker of this test's own: freezing the shared one would stall other tests."""
    with KafkaCluster(brokers=1) as cluster:
        yield cluster


async def test_readiness_fails_while_the_broker_is_frozen_and_returns_with_its_acks(
    own_broker: KafkaCluster,
) -> None:
    own_broker.create_topics({TOPIC: 1})
    node = own_broker.nodes[0].process
    assert node is not None
    settings = settings_for(own_broker.bootstrap_servers, ack_stall_seconds=1.0)
    async for api, channel in running(settings):
        stub = hello_pb2_grpc.HelloApiStub(channel)
        await stub.SayHello(hello_pb2.HelloRequest(name="before"), timeout=10)
        assert api.readiness() == (True, "ok")
        os.kill(node.pid, signal.SIGSTOP)
        try:
            call = asyncio.ensure_future(
                stub.SayHello(hello_pb2.HelloRequest(name="during"), timeout=30)
            )
            for _ in range(100):  # up to 10 s; the limit is 1 s
                ready, reason = api.readiness()
                if not ready:
                    break
                await asyncio.sleep(0.1)
            assert not ready
            assert reason.startswith("kafka has not answered a message for ")
            assert not api.publisher.brokers_down  # librdkafka still sees the broker up
        finally:
            os.kill(node.pid, signal.SIGCONT)
        reply = await call  # acknowledged once the broker runs again
        assert reply.message == "Hello, during!"
        assert api.readiness() == (True, "ok")


async def test_readiness_returns_after_a_full_outage_without_any_call(
    own_broker: KafkaCluster,
) -> None:
    # In Kubernetes an unready pod gets no calls: readiness must come back by itself.
    own_broker.create_topics({TOPIC: 1})
    settings = settings_for(own_broker.bootstrap_servers)
    async for api, channel in running(settings):
        stub = hello_pb2_grpc.HelloApiStub(channel)
        await stub.SayHello(hello_pb2.HelloRequest(name="before"), timeout=10)
        own_broker.stop_node(1)
        for _ in range(200):  # up to 20 s
            if not api.readiness()[0]:
                break
            await asyncio.sleep(0.1)
        assert api.readiness() == (False, "kafka brokers unreachable")
        await asyncio.to_thread(own_broker.start_node, 1)
        for _ in range(300):  # up to 30 s; the probe runs every 2 s
            if api.readiness()[0]:
                break
            await asyncio.sleep(0.1)
        assert api.readiness() == (True, "ok")


async def test_a_missing_topic_fails_calls_at_once_and_readiness_until_it_is_created(
    kafka: KafkaCluster,
) -> None:
    topic = f"created-later-{free_port()}"
    # A call that waited for the delivery timeout would end DEADLINE_EXCEEDED first.
    settings = settings_for(kafka.bootstrap_servers, delivery_timeout_ms=120_000)
    settings.topic = topic
    async for api, channel in running(settings):
        for _ in range(100):  # the poll thread asks for metadata as it starts
            if not api.readiness()[0]:
                break
            await asyncio.sleep(0.05)
        assert api.readiness() == (False, f"topic {topic!r} does not exist")
        stub = hello_pb2_grpc.HelloApiStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.SayHello(hello_pb2.HelloRequest(name="early"), timeout=60)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert info.value.details() == (
            f"Kafka did not acknowledge the message: topic {topic!r} does not exist; "
            "nothing was written"
        )

        kafka.create_topics({topic: 1})
        for _ in range(200):  # up to 20 s; metadata is asked for every 2 s
            if api.readiness()[0]:
                break
            await asyncio.sleep(0.1)
        assert api.readiness() == (True, "ok")
        reply = await stub.SayHello(hello_pb2.HelloRequest(name="later"), timeout=15)
        assert (reply.message, reply.topic) == ("Hello, later!", topic)
