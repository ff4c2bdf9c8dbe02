"""The HelloApi gRPC servicer and the server's lifecycle.

Status codes a client sees:

- ``INVALID_ARGUMENT``: the name was refused (see ``hello_core.names``), or
  the request bytes are not a HelloRequest; never retry.
- ``UNAVAILABLE``: Kafka did not acknowledge the message in time, or the
  server is shutting down. Not acknowledged is not "not written": a
  delivery timeout can hit a record the broker did store, so a retry can
  duplicate it.
- ``RESOURCE_EXHAUSTED``: the local producer queue is full; retry with
  backoff. gRPC itself answers it, with "Received message larger than max",
  for a request over ``MAX_REQUEST_BYTES``; never retry that.
- ``DEADLINE_EXCEEDED``: the client's deadline passed before the broker
  acknowledged. The message may still be delivered later, so a retry can
  produce a second message with a new id.
- ``CANCELLED``: the call was in flight when the server stopped draining.

SayHello is registered with our own request deserializer: protobuf's
DecodeError would otherwise become UNKNOWN plus a logged traceback per call.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from hello_api.publisher import Publisher, PublishError, QueueFullError
from hello_api.settings import ENV_PREFIX, ApiSettings
from hello_api.validation import validate_name
from hello_core import telemetry
from hello_core.envelope import (
    REQUEST_CONTENT_TYPE,
    GreetingRequest,
    greeting_for,
    new_message_id,
    now_ms,
)
from hello_core.errors import ValidationError
from hello_core.http import listen_failure
from hello_core.kafka import invalid_config, producer_config
from hello_core.logs import MAX_FIELD_CHARS, Throttle
from hello_proto import hello_pb2, hello_pb2_grpc

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

SERVICE_NAME = hello_pb2.DESCRIPTOR.services_by_name["HelloApi"].full_name

# Largest request gRPC accepts, instead of its 4 MiB default. A valid request
# is a name of at most 256 code points (<= 1 KiB of UTF-8) plus a few bytes of
# framing; anything near this bound is not a client of ours.
MAX_REQUEST_BYTES = 64 * 1024

# Per-call warnings repeat once per call when Kafka is in trouble: log the
# first, then one line per kind per this many seconds, with the count skipped.
# hello_api_calls_total has the full count.
WARNING_INTERVAL_SECONDS = 5.0

CALLS = Counter("hello_api_calls_total", "SayHello calls by gRPC status code.", ["code"])
PUBLISH_SECONDS = Histogram(
    "hello_api_publish_seconds",
    "Time from receiving a call to the broker's acknowledgement.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class Undecodable:
    """Stands in for a request whose bytes protobuf could not parse."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def decode_request(data: bytes) -> hello_pb2.HelloRequest | Undecodable:
    """gRPC's request deserializer for SayHello: never raises."""
    try:
        return hello_pb2.HelloRequest.FromString(data)
    except DecodeError as exc:
        return Undecodable(str(exc) or "undecodable bytes")


class HelloApiServicer(hello_pb2_grpc.HelloApiServicer):
    def __init__(self, publisher: Publisher, *, throttle: Throttle | None = None) -> None:
        self._publisher = publisher
        self._throttle = throttle or Throttle(WARNING_INTERVAL_SECONDS)

    def handler(self) -> grpc.GenericRpcHandler:
        """The HelloApi service with ``decode_request`` in place of the generated deserializer."""
        methods = {
            "SayHello": grpc.unary_unary_rpc_method_handler(
                self.SayHello,
                request_deserializer=decode_request,
                response_serializer=hello_pb2.HelloReply.SerializeToString,
            )
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, methods)

    async def SayHello(  # noqa: N802 - name fixed by the proto
        self,
        request: hello_pb2.HelloRequest | Undecodable,
        context: grpc.aio.ServicerContext,
    ) -> hello_pb2.HelloReply:
        started = time.perf_counter()
        if isinstance(request, Undecodable):
            CALLS.labels("INVALID_ARGUMENT").inc()
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request is not a valid {hello_pb2.HelloRequest.DESCRIPTOR.full_name}: "
                f"{request.reason}",
            )
            return hello_pb2.HelloReply()  # not reached: abort raises
        try:
            name = validate_name(request.name)
        except ValidationError as exc:
            CALLS.labels("INVALID_ARGUMENT").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

        message_id = new_message_id()
        envelope = GreetingRequest(id=message_id, name=name, produced_at_ms=now_ms())
        with tracer.start_as_current_span(
            "publish greeting request",
            kind=trace.SpanKind.PRODUCER,
            # A failed call is answered with a status, not a traceback: keep the
            # error path as cheap as the happy one under overload.
            record_exception=False,
        ) as span:
            span.set_attribute("messaging.message.id", message_id)
            span.set_attribute("messaging.destination.name", self._publisher.topic)
            headers: list[tuple[str, str | bytes | None]] = [
                ("content-type", REQUEST_CONTENT_TYPE.encode()),
                *telemetry.inject_headers(),
            ]
            publish = self._publisher.publish(
                key=message_id.encode(),
                value=envelope.encode(),
                headers=headers,
                timestamp_ms=envelope.produced_at_ms,
            )
            try:
                # asyncio.timeout, unlike wait_for, needs no extra task per call.
                async with asyncio.timeout(context.time_remaining()):
                    delivery = await publish
            except asyncio.CancelledError:
                # The client went away or the drain grace ran out; the record
                # may still be delivered.
                CALLS.labels("CANCELLED").inc()
                raise
            except TimeoutError:
                CALLS.labels("DEADLINE_EXCEEDED").inc()
                self._warn(
                    "deadline passed before broker ack",
                    message_id=message_id,
                    topic=self._publisher.topic,
                )
                await context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    "deadline passed before Kafka acknowledged the message; "
                    "it may still be delivered",
                )
            except QueueFullError as exc:
                CALLS.labels("RESOURCE_EXHAUSTED").inc()
                self._warn(
                    "producer queue full",
                    message_id=message_id,
                    topic=self._publisher.topic,
                    reason=str(exc),
                )
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; retry later")
            except PublishError as exc:
                CALLS.labels("UNAVAILABLE").inc()
                self._warn(
                    "publish failed",
                    message_id=message_id,
                    topic=self._publisher.topic,
                    code=exc.code,
                    reason=str(exc)[:MAX_FIELD_CHARS],
                )
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, f"Kafka did not acknowledge the message: {exc}"
                )

        PUBLISH_SECONDS.observe(time.perf_counter() - started)
        CALLS.labels("OK").inc()
        logger.debug(
            "published",
            extra={
                "message_id": message_id,
                "topic": delivery.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
            },
        )
        return hello_pb2.HelloReply(
            message=greeting_for(name),
            message_id=message_id,
            topic=delivery.topic,
            partition=delivery.partition,
            offset=delivery.offset,
        )

    def _warn(self, event: str, **fields: object) -> None:
        """A per-call warning, throttled per event; the call was answered with a status."""
        suppressed = self._throttle(event)
        if suppressed is not None:
            logger.warning(event, extra={**fields, "suppressed": suppressed})

    def log_suppressed(self, *, force: bool = False) -> None:
        """Log how many warnings the throttle skipped that no later line has counted."""
        for event, skipped in self._throttle.flush(force=force):
            # Its own message: these were counted, not new failures.
            logger.warning("warnings skipped", extra={"event": event, "suppressed": skipped})

    async def log_suppressed_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._throttle.interval)
            self.log_suppressed()


class ApiServer:
    """The running gRPC server with its health and reflection services."""

    def __init__(self, settings: ApiSettings) -> None:
        """Create the producer and bind the address; ConfigError if either is refused."""
        self.settings = settings
        try:
            self.publisher = Publisher(
                producer_config(
                    settings.kafka,
                    linger_ms=settings.linger_ms,
                    delivery_timeout_ms=settings.delivery_timeout_ms,
                )
                | {"queue.buffering.max.messages": settings.max_queue_messages},
                topic=settings.topic,
                ack_stall_seconds=settings.ack_stall_seconds,
            )
        except Exception as exc:
            error = invalid_config(exc, env_prefix=ENV_PREFIX)
            if error is None:
                raise
            raise error from exc
        self._stalled = False
        self._draining = False
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            maximum_concurrent_rpcs=settings.max_concurrent_calls,
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
            ],
        )
        self.servicer = HelloApiServicer(self.publisher)
        self._suppressed_task: asyncio.Task[None] | None = None
        self.server.add_generic_rpc_handlers((self.servicer.handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        try:
            self.port = self.server.add_insecure_port(settings.listen_address)
        except RuntimeError:
            self.port = 0  # grpc raises instead of returning 0 since 1.5x
        if self.port == 0:
            raise listen_failure(
                settings.listen_address,
                f"{ENV_PREFIX}LISTEN_ADDRESS",
                _bind_error(settings.listen_address),
            )

    def readiness(self) -> tuple[bool, str]:
        """For /readyz: not ready while draining, or while Kafka is unreachable, lacks
        the topic or has stopped acknowledging."""
        ready, reason = readiness(self.publisher, draining=self._draining)
        if ready == self._stalled:
            # Logged on the transition only; the probe asks every few seconds.
            self._stalled = not ready
            if ready:
                logger.info("ready again", extra={"topic": self.settings.topic})
            else:
                logger.warning("not ready", extra={"reason": reason, "topic": self.settings.topic})
        return ready, reason

    async def start(self) -> None:
        self.publisher.start()
        await self.server.start()
        self._suppressed_task = asyncio.create_task(self.servicer.log_suppressed_periodically())
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        logger.info(
            "api serving",
            extra={
                "address": self.settings.listen_address,
                "port": self.port,
                "topic": self.settings.topic,
                "bootstrap_servers": self.settings.kafka.bootstrap_servers,
            },
        )

    async def stop(self) -> int:
        """Drain: refuse new calls, finish in-flight ones, flush the producer.

        Returns the number of records the producer could not deliver.
        """
        grace = self.settings.shutdown_grace_seconds
        logger.info("api draining", extra={"grace_seconds": grace})
        self._draining = True
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self._suppressed_task is not None:
            self._suppressed_task.cancel()
        self.servicer.log_suppressed(force=True)
        remaining = await asyncio.to_thread(self.publisher.close, grace)
        logger.info("api stopped", extra={"undelivered": remaining})
        return remaining


async def serve(
    settings: ApiSettings, *, on_started: Callable[[ApiServer], Awaitable[None]] | None = None
) -> int:
    """Run until SIGTERM or SIGINT, then drain. Returns the process exit code."""
    api = ApiServer(settings)
    await api.start()
    if on_started is not None:
        await on_started(api)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    remaining = await api.stop()
    return 0 if remaining == 0 else 1


class Readiness(Protocol):
    topic: str

    @property
    def brokers_down(self) -> bool: ...

    @property
    def topic_missing(self) -> bool: ...

    def stalled_for(self) -> float | None: ...


def readiness(publisher: Readiness, *, draining: bool = False) -> tuple[bool, str]:
    """Ready unless draining, every broker is unreachable, the topic is missing,
    or the oldest delivery waits too long."""
    if draining:
        return False, "draining"
    if publisher.brokers_down:
        return False, "kafka brokers unreachable"
    if publisher.topic_missing:
        return False, f"topic {publisher.topic!r} does not exist"
    stalled = publisher.stalled_for()
    if stalled is not None:
        return False, f"kafka has not answered a message for {stalled:.1f}s"
    return True, "ok"


def _bind_error(address: str) -> OSError:
    """Why ``address`` cannot be bound, asked of the OS: gRPC's own error says only "failed"."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError as exc:
        return exc
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            return exc
    return OSError(f"gRPC could not bind {address}")
