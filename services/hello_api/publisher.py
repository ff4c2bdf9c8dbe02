"""Publishing to Kafka from asyncio: one idempotent acks=all producer per process.

``publish`` resolves only once the broker has acknowledged the record. A
background thread serves the producer's delivery callbacks and hands each
result back to the event loop. ``stalled_for`` tells readiness when the
broker has stopped answering (see ``hello_api.acks``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from hello_api.acks import AckWatch, Pending

logger = logging.getLogger(__name__)

# While every broker is unreachable, or the topic is missing, how often the
# poll thread asks for metadata.
BROKER_PROBE_INTERVAL_S = 2.0


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    partition: int
    offset: int


class PublishError(Exception):
    """The broker did not acknowledge the record; ``code`` is librdkafka's error name."""

    def __init__(self, message: str, *, code: str, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class QueueFullError(PublishError):
    """The local producer queue is full: the caller should back off."""


class Publisher:
    def __init__(
        self,
        config: dict[str, Any],
        *,
        topic: str,
        ack_stall_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self._brokers_down = False
        # None until the first metadata answer says whether the topic exists.
        self._topic_missing: bool | None = None
        self._acks = AckWatch(limit_s=ack_stall_seconds, clock=clock)
        self._producer = Producer({**config, "error_cb": self._on_client_error})
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Delivery results waiting for the event loop: (future, pending, error, message).
        self._results: list[_Result] = []
        self._results_lock = threading.Lock()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)

    @property
    def brokers_down(self) -> bool:
        """True after librdkafka reported every broker unreachable, until one answers again."""
        return self._brokers_down

    @property
    def topic_missing(self) -> bool:
        """True while Kafka answers that the topic does not exist."""
        return bool(self._topic_missing)

    @property
    def waiting(self) -> int:
        """Records produced and not yet answered by Kafka (queued or in flight)."""
        return len(self._producer)

    def stalled_for(self) -> float | None:
        """Seconds the oldest unanswered delivery has waited, once over ``ack_stall_seconds``."""
        return self._acks.stalled_for()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._poller.start()

    def _poll_loop(self) -> None:
        next_probe = 0.0
        while not self._stop.is_set():
            # Serves delivery callbacks; a short timeout keeps shutdown prompt.
            self._producer.poll(0.05)
            self._hand_over()
            unsure = self._brokers_down or self._topic_missing is not False
            if unsure and time.monotonic() >= next_probe:
                # An unready pod gets no calls, so a successful call cannot be
                # what clears the flags: ask for metadata instead.
                self._probe_metadata()
                next_probe = time.monotonic() + BROKER_PROBE_INTERVAL_S

    def _probe_metadata(self) -> None:
        try:
            metadata = self._producer.list_topics(self.topic, timeout=1.0)
        except KafkaException:
            return
        self._mark_reachable()
        found = metadata.topics.get(self.topic)
        missing = found is None or (
            found.error is not None and found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        )
        if missing and not self._topic_missing:
            logger.error(
                "topic does not exist; calls fail with UNAVAILABLE until it is created",
                extra={"topic": self.topic},
            )
        elif not missing and self._topic_missing:
            logger.info("topic exists now", extra={"topic": self.topic})
        self._topic_missing = missing

    def _mark_reachable(self) -> None:
        if self._brokers_down:
            logger.info("kafka reachable again", extra={"topic": self.topic})
            self._brokers_down = False

    def _hand_over(self) -> None:
        """Pass the delivery results gathered by one poll to the event loop in one wake-up."""
        with self._results_lock:
            results, self._results = self._results, []
        if results and self._loop is not None:
            self._loop.call_soon_threadsafe(self._resolve_all, results)

    def _on_client_error(self, error: KafkaError) -> None:
        # Single-connection failures repeat every backoff while a broker is
        # down; only the all-brokers-down transition is worth a warning.
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            if not self._brokers_down:
                logger.warning(
                    "all kafka brokers unreachable; calls fail with UNAVAILABLE until one answers",
                    extra={"topic": self.topic},
                )
            self._brokers_down = True
            return
        level = logging.ERROR if error.fatal() else logging.DEBUG
        logger.log(
            level,
            "kafka client error",
            extra={"code": error.name(), "reason": error.str(), "fatal": error.fatal()},
        )

    async def publish(
        self,
        *,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, str | bytes | None]],
        timestamp_ms: int,
    ) -> Delivery:
        if self._topic_missing:
            # librdkafka would hold the record until the delivery timeout.
            raise PublishError(
                f"topic {self.topic!r} does not exist; nothing was written",
                code="UNKNOWN_TOPIC_OR_PART",
                retryable=True,
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Delivery] = loop.create_future()

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            # Runs in the poll thread (or in flush): only queue the result here.
            with self._results_lock:
                self._results.append((future, pending, error, message))

        # Tracked before produce: the poll thread may answer before produce returns.
        pending = self._acks.sent()
        try:
            self._producer.produce(
                self.topic,
                value=value,
                key=key,
                headers=headers,
                timestamp=timestamp_ms,
                on_delivery=on_delivery,
            )
        except BufferError as exc:
            self._acks.answered(pending)
            raise QueueFullError(
                f"local producer queue is full ({len(self._producer)} messages waiting)",
                code="QUEUE_FULL",
                retryable=True,
            ) from exc
        except KafkaException as exc:
            self._acks.answered(pending)
            error = exc.args[0]
            raise PublishError(
                f"produce refused: {error.str()}", code=error.name(), retryable=error.retriable()
            ) from exc
        delivery = await future
        self._mark_reachable()
        return delivery

    def close(self, timeout: float) -> int:
        """Flush what is queued for up to ``timeout`` s; return how many records were left."""
        remaining: int = self._producer.flush(timeout)
        self._stop.set()
        if self._poller.is_alive():
            self._poller.join(timeout=1)
        self._hand_over()  # results served by flush itself
        if remaining:
            logger.error(
                "producer closed with undelivered records",
                extra={"topic": self.topic, "count": remaining},
            )
        return remaining

    def _resolve_all(self, results: list[_Result]) -> None:
        for future, pending, error, message in results:
            self._acks.answered(pending)
            _resolve(future, error, message)


_Result = tuple["asyncio.Future[Delivery]", Pending, KafkaError | None, Message]


def _resolve(future: asyncio.Future[Delivery], error: KafkaError | None, message: Message) -> None:
    if future.done():  # the caller gave up (deadline or cancel)
        return
    if error is not None:
        future.set_exception(
            PublishError(
                f"delivery failed: {error.str()}",
                code=error.name(),
                retryable=not error.fatal(),
            )
        )
    else:
        future.set_result(
            Delivery(
                topic=str(message.topic()),
                partition=int(message.partition() or 0),
                offset=int(message.offset() or 0),
            )
        )
