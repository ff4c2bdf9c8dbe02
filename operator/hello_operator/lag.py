"""Reading a consumer group's offsets from Kafka: the thin I/O side of scaling.

One poll asks for the partitions (``describe_topics``), then issues three
requests together so they cost one round trip: the log start and log end
of every partition (AdminClient ``list_offsets`` with
``OffsetSpec.earliest()`` / ``latest()``, read-committed, so open
transactions are not lag) and the group's committed offsets.

Committed offsets are read with ``Consumer.committed()`` (an OffsetFetch by
a client that never joins the group), not AdminClient
``list_consumer_group_offsets``: with librdkafka 2.16.0 the latter
segfaults the whole process (NULL dereference in its rdk:main thread) when
the group coordinator answers COORDINATOR_LOAD_IN_PROGRESS, which every
broker start or __consumer_offsets leader move produces. Reproduced in this
repository against a freshly started broker; ``committed()`` survives the
same condition and reports NOT_COORDINATOR instead. Revisit when
confluent-kafka ships a librdkafka newer than 2.16.0. Since ``group.id`` is
per client, one such Consumer is kept per consumer group.

Because the requests race, a consumer may commit past a log end read a
moment earlier; :func:`hello_operator.scaling.decide` treats that as zero
lag, never negative. A partition whose watermarks or committed offset could
not be read is returned with ``log_end=None`` ("unknown"), never as "no
committed offset", which could inflate lag under ``earliest``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from hello_core.errors import HelloError
from hello_operator.scaling import PartitionOffsets

logger = logging.getLogger(__name__)


class LagReadError(HelloError):
    """Offsets could not be read; the message names the topic, group and cause."""


class KafkaUnreachableError(LagReadError):
    """No broker answered in time; the scale loop keeps replicas as they are."""


class TopicNotFoundError(LagReadError):
    """The topic does not exist (yet); nothing can be consumed, so lag is unknown."""


_UNREACHABLE_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
    }
)
# The broker answered but cannot serve the request yet (e.g. it is still
# loading __consumer_offsets after a start); as good as unreachable for now.
_NOT_READY_CODES = frozenset(
    {
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    }
)


def _translate(exc: BaseException, *, topic: str, group: str) -> LagReadError:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    code = error.code() if isinstance(error, KafkaError) else None
    text = error.str() if isinstance(error, KafkaError) else str(exc) or type(exc).__name__
    where = f"topic={topic} group={group}"
    if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
        return TopicNotFoundError(f"topic {topic!r} does not exist ({where})")
    if code in _UNREACHABLE_CODES or isinstance(exc, TimeoutError):
        return KafkaUnreachableError(f"Kafka did not answer: {text} ({where})")
    if code in _NOT_READY_CODES:
        return KafkaUnreachableError(f"Kafka is not ready: {text} ({where})")
    return LagReadError(f"reading offsets failed: {text} ({where})")


class OffsetReader:
    """Reads per-partition offsets of one topic for one consumer group.

    One instance serves every pipeline: one AdminClient, plus one idle
    Consumer per consumer group for its committed offsets. librdkafka
    clients are thread-safe and keep their broker connections between polls.
    """

    def __init__(
        self,
        admin: AdminClient,
        *,
        consumer_for: Callable[[str], Consumer],
        timeout: float,
    ) -> None:
        self._admin = admin
        self._consumer_for = consumer_for
        self._consumers: dict[str, Consumer] = {}
        self._lock = threading.Lock()
        self._timeout = timeout

    def _consumer(self, group: str) -> Consumer:
        with self._lock:
            if group not in self._consumers:
                self._consumers[group] = self._consumer_for(group)
            return self._consumers[group]

    def close(self) -> None:
        with self._lock:
            consumers, self._consumers = list(self._consumers.values()), {}
        for consumer in consumers:
            consumer.close()

    def read(self, topic: str, group: str) -> list[PartitionOffsets]:
        """The offsets of every partition of ``topic`` for ``group``.

        Raises:
            KafkaUnreachableError: no broker answered within the timeout.
            TopicNotFoundError: the topic does not exist.
            LagReadError: any other failure of the whole request.
        """
        try:
            partitions = self._partitions(topic)
            return self._offsets(topic, group, partitions)
        except LagReadError:
            raise
        except Exception as exc:
            raise _translate(exc, topic=topic, group=group) from exc

    def _partitions(self, topic: str) -> list[int]:
        futures = self._admin.describe_topics(
            TopicCollection([topic]), request_timeout=self._timeout
        )
        description = futures[topic].result(timeout=self._timeout + 1)
        return sorted(p.id for p in description.partitions)

    def _offsets(self, topic: str, group: str, partitions: list[int]) -> list[PartitionOffsets]:
        wait = self._timeout + 1
        tps = [TopicPartition(topic, p) for p in partitions]
        start_futures = self._list_offsets(tps, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        end_futures = self._list_offsets(tps, OffsetSpec.latest())  # type: ignore[no-untyped-call]

        consumer = self._consumer(group)
        try:
            # Blocks without the GIL while the watermark requests are in flight.
            result = consumer.committed(tps, timeout=self._timeout)
        finally:
            # Serves queued librdkafka log lines to the Python logger.
            consumer.poll(0)
        committed: dict[int, int | None] = {}
        for tp in result:
            if tp.error is not None:
                logger.warning(
                    "committed offset unreadable, partition counted as unknown"
                    " topic=%s group=%s partition=%d error=%s",
                    topic,
                    group,
                    tp.partition,
                    tp.error,
                )
                continue
            committed[tp.partition] = tp.offset

        starts = self._collect(start_futures, topic=topic, wait=wait)
        ends = self._collect(end_futures, topic=topic, wait=wait)
        offsets = []
        for p in partitions:
            known = p in committed
            offsets.append(
                PartitionOffsets(
                    partition=p,
                    committed=committed.get(p),
                    log_start=starts.get(p),
                    log_end=ends.get(p) if known else None,
                )
            )
        return offsets

    def _list_offsets(
        self, tps: list[TopicPartition], spec: OffsetSpec
    ) -> dict[TopicPartition, Future[Any]]:
        return self._admin.list_offsets(
            dict.fromkeys(tps, spec),
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=self._timeout,
        )

    def _collect(
        self, futures: dict[TopicPartition, Future[Any]], *, topic: str, wait: float
    ) -> dict[int, int]:
        offsets: dict[int, int] = {}
        failures: list[tuple[int, BaseException]] = []
        for tp, future in futures.items():
            try:
                offsets[tp.partition] = future.result(timeout=wait).offset
            except KafkaException as exc:
                failures.append((tp.partition, exc))
        if failures and not offsets:
            # Every partition failed: that is the broker, not one partition.
            raise failures[0][1]
        for partition, error in failures:
            logger.warning(
                "watermark unreadable, partition counted as unknown topic=%s partition=%d error=%s",
                topic,
                partition,
                error,
            )
        return offsets
