"""Reading a consumer group's offsets from Kafka: the thin I/O side of scaling.

One poll makes three admin requests, issued together so a poll costs one
round trip: the group's committed offsets (``list_consumer_group_offsets``)
and the log start and log end of every partition (``list_offsets`` with
``OffsetSpec.earliest()`` / ``latest()``, read-committed, so open
transactions are not lag). The partitions come from ``describe_topics``.

Because the requests race, a consumer may commit past a log end read a
moment earlier; :func:`hello_operator.scaling.decide` treats that as zero
lag, never negative. A partition whose watermarks or committed offset could
not be read is returned with ``log_end=None`` ("unknown"), never as "no
committed offset", which could inflate lag under ``earliest``.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
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


class KafkaUnreachable(LagReadError):
    """No broker answered in time; the scale loop keeps replicas as they are."""


class TopicNotFound(LagReadError):
    """The topic does not exist (yet); nothing can be consumed, so lag is unknown."""


_UNREACHABLE_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.LEADER_NOT_AVAILABLE,
    }
)


def _translate(exc: BaseException, *, topic: str, group: str) -> LagReadError:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    code = error.code() if isinstance(error, KafkaError) else None
    text = error.str() if isinstance(error, KafkaError) else str(exc) or type(exc).__name__
    where = f"topic={topic} group={group}"
    if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
        return TopicNotFound(f"topic {topic!r} does not exist ({where})")
    if code in _UNREACHABLE_CODES or isinstance(exc, TimeoutError):
        return KafkaUnreachable(f"Kafka did not answer: {text} ({where})")
    return LagReadError(f"reading offsets failed: {text} ({where})")


class OffsetReader:
    """Reads per-partition offsets of one topic for one consumer group.

    One instance (and one AdminClient) serves every pipeline: the client is
    thread-safe and keeps its broker connections between polls.
    """

    def __init__(self, admin: AdminClient, *, timeout: float) -> None:
        self._admin = admin
        self._timeout = timeout

    @classmethod
    def from_config(cls, config: dict[str, Any], *, timeout: float) -> OffsetReader:
        return cls(AdminClient(config), timeout=timeout)

    def read(self, topic: str, group: str) -> list[PartitionOffsets]:
        """The offsets of every partition of ``topic`` for ``group``.

        Raises:
            KafkaUnreachable: no broker answered within the timeout.
            TopicNotFound: the topic does not exist.
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
        committed_futures = self._admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, tps)], request_timeout=self._timeout
        )
        start_futures = self._list_offsets(tps, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        end_futures = self._list_offsets(tps, OffsetSpec.latest())  # type: ignore[no-untyped-call]

        committed: dict[int, int | None] = {}
        result = committed_futures[group].result(timeout=wait)
        for tp in result.topic_partitions or ():
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
            {tp: spec for tp in tps},
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
