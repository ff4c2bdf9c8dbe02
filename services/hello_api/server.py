"""The HelloApi gRPC servicer and the server's lifecycle.

Status codes a client sees:

- ``INVALID_ARGUMENT``: the name was refused (see ``validation``); never retry.
- ``UNAVAILABLE``: Kafka did not acknowledge the message in time, or the
  server is shutting down; safe to retry.
- ``RESOURCE_EXHAUSTED``: the local producer queue is full; retry with backoff.
- ``DEADLINE_EXCEEDED``: the client's deadline passed before the broker
  acknowledged. The message may still be delivered later, so a retry can
  produce a second message with a new id.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from hello_api.publisher import Publisher, PublishError, QueueFullError
from hello_api.settings import ApiSettings
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
from hello_core.kafka import producer_config
from hello_core.logs import MAX_FIELD_CHARS
from hello_proto import hello_pb2, hello_pb2_grpc

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

SERVICE_NAME = hello_pb2.DESCRIPTOR.services_by_name["HelloApi"].full_name

CALLS = Counter("hello_api_calls_total", "SayHello calls by gRPC status code.", ["code"])
PUBLISH_SECONDS = Histogram(
    "hello_api_publish_seconds",
    "Time from receiving a call to the broker's acknowledgement.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class HelloApiServicer(hello_pb2_grpc.HelloApiServicer):
    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    async def SayHello(  # noqa: N802 - name fixed by the proto
        self, request: hello_pb2.HelloRequest, context: grpc.aio.ServicerContext
    ) -> hello_pb2.HelloReply:
        started = time.perf_counter()
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
            except TimeoutError:
                CALLS.labels("DEADLINE_EXCEEDED").inc()
                logger.warning(
                    "deadline passed before broker ack message_id=%s topic=%s",
                    message_id,
                    self._publisher.topic,
                )
                await context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    "deadline passed before Kafka acknowledged the message; "
                    "it may still be delivered",
                )
            except QueueFullError as exc:
                CALLS.labels("RESOURCE_EXHAUSTED").inc()
                logger.warning("producer queue full message_id=%s reason=%s", message_id, exc)
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; retry later")
            except PublishError as exc:
                CALLS.labels("UNAVAILABLE").inc()
                logger.warning(
                    "publish failed message_id=%s topic=%s code=%s reason=%s",
                    message_id,
                    self._publisher.topic,
                    exc.code,
                    str(exc)[:MAX_FIELD_CHARS],
                )
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, f"Kafka did not acknowledge the message: {exc}"
                )

        PUBLISH_SECONDS.observe(time.perf_counter() - started)
        CALLS.labels("OK").inc()
        logger.debug(
            "published message_id=%s topic=%s partition=%d offset=%d",
            message_id,
            delivery.topic,
            delivery.partition,
            delivery.offset,
        )
        return hello_pb2.HelloReply(
            message=greeting_for(name),
            message_id=message_id,
            topic=delivery.topic,
            partition=delivery.partition,
            offset=delivery.offset,
        )


class ApiServer:
    """The running gRPC server with its health and reflection services."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.publisher = Publisher(
            producer_config(
                settings.kafka,
                linger_ms=settings.linger_ms,
                delivery_timeout_ms=settings.delivery_timeout_ms,
            )
            | {"queue.buffering.max.messages": settings.max_queue_messages},
            topic=settings.topic,
        )
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            maximum_concurrent_rpcs=settings.max_concurrent_calls,
            options=[("grpc.so_reuseport", 0)],
        )
        servicer = HelloApiServicer(self.publisher)
        hello_pb2_grpc.add_HelloApiServicer_to_server(servicer, self.server)  # type: ignore[no-untyped-call]
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(settings.listen_address)
        if self.port == 0:
            raise OSError(f"cannot listen on {settings.listen_address}")

    async def start(self) -> None:
        self.publisher.start()
        await self.server.start()
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        logger.info(
            "api serving address=%s port=%d topic=%s bootstrap=%s",
            self.settings.listen_address,
            self.port,
            self.settings.topic,
            self.settings.kafka.bootstrap_servers,
        )

    async def stop(self) -> int:
        """Drain: refuse new calls, finish in-flight ones, flush the producer.

        Returns the number of records the producer could not deliver.
        """
        grace = self.settings.shutdown_grace_seconds
        logger.info("api draining grace_seconds=%.1f", grace)
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        remaining = await asyncio.to_thread(self.publisher.close, grace)
        logger.info("api stopped undelivered=%d", remaining)
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
