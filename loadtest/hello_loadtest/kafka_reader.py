"""Reading the output topic back to verify delivery (the I/O half of ``verify``).

``mark()`` notes each partition's end offset before the run; ``read()``
afterwards reads from there with ``isolation.level=read_committed`` (the
consumer writes transactionally, so aborted records must stay invisible)
until every expected id has been seen, then a little longer to catch
duplicates, or until the timeout.

librdkafka reports broker trouble through the error callback (or as message
errors) and keeps retrying, so the reader reads on through it. When ids are
still missing at the end, the reader asks Kafka for the topic's partitions:
if it cannot get them, the ids were not read rather than lost, and ``read``
raises ``VerificationError`` saying so (``verify.unread_error``).

Partitions are assigned directly, with no consumer group join: nothing is
committed and the pipeline's own groups are left alone.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from hello_core.envelope import Greeting
from hello_core.errors import EnvelopeError
from hello_core.kafka import consumer_config
from hello_core.settings import KafkaSettings
from hello_loadtest.verify import CONTACT_ERRORS, Delivered, ReaderError, unread_error

logger = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 10.0
# How long the check after the reading may take to show that Kafka answers.
REACH_TIMEOUT_S = 5.0
POLL_BATCH = 500
# librdkafka reports each failed reconnect (many a second); the last few are enough.
ERRORS_KEPT = 20


class VerificationError(RuntimeError):
    """The output topic could not be read."""


class GreetingReader:
    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self.bootstrap_servers = settings.bootstrap_servers
        self._errors: deque[ReaderError] = deque(maxlen=ERRORS_KEPT)
        config = consumer_config(settings, group_id=f"hello-load-verify-{uuid.uuid4().hex[:12]}")
        config["error_cb"] = self._on_error
        self._consumer = Consumer(config)
        self._start: list[TopicPartition] = []

    def _on_error(self, error: KafkaError) -> None:
        # Called from consume() on the reading thread.
        self._errors.append(ReaderError(error.name(), error.str()))

    def mark(self) -> None:
        """Remember where the topic ends now; ``read`` starts there."""
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=METADATA_TIMEOUT_S)
        except KafkaException as exc:
            raise VerificationError(f"cannot reach Kafka: {exc}") from exc
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise VerificationError(f"topic {self.topic!r} does not exist or has no partitions")
        self._start = []
        for partition in sorted(topic.partitions):
            tp = TopicPartition(self.topic, partition)
            _, high = self._consumer.get_watermark_offsets(tp, timeout=METADATA_TIMEOUT_S)
            self._start.append(TopicPartition(self.topic, partition, high))
        logger.info(
            "verification start offsets topic=%s offsets=%s",
            self.topic,
            {tp.partition: tp.offset for tp in self._start},
        )

    def read(
        self, expected_ids: set[str], *, timeout_s: float, settle_s: float = 1.0
    ) -> tuple[list[Delivered], bool, float]:
        """Records since ``mark``: (records, timed out, seconds spent).

        Raises ``VerificationError`` when the topic cannot be read (a
        message error other than a broker-contact one), or when ids are
        still missing and Kafka cannot be reached after the reading; that
        check adds up to ``REACH_TIMEOUT_S``.
        """
        if not self._start:
            raise VerificationError("mark() was not called before the run")
        self._consumer.assign(self._start)
        began = time.monotonic()
        deadline = began + timeout_s
        records: list[Delivered] = []
        missing = set(expected_ids)
        settle_until: float | None = None if missing else began + settle_s
        while True:
            now = time.monotonic()
            if settle_until is not None and now >= settle_until:
                timed_out = False
                break
            if now >= deadline:
                timed_out = bool(missing)
                break
            for message in self._consumer.consume(POLL_BATCH, timeout=0.2):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    if error.name() in CONTACT_ERRORS:
                        self._errors.append(ReaderError(error.name(), error.str()))
                        continue
                    raise VerificationError(f"reading {self.topic}: {error}")
                try:
                    greeting = Greeting.decode(message.value())
                except EnvelopeError as exc:
                    # Not ours to judge; the consumer's tests cover the format.
                    logger.warning(
                        "undecodable record partition=%s offset=%s error=%s",
                        message.partition(),
                        message.offset(),
                        exc,
                    )
                    continue
                records.append(
                    Delivered(greeting.id, greeting.produced_at_ms, greeting.processed_at_ms)
                )
                missing.discard(greeting.id)
            if not missing and settle_until is None:
                settle_until = time.monotonic() + settle_s
        waited = time.monotonic() - began
        logger.info(
            "verification read records=%d missing=%d waited_s=%.2f",
            len(records),
            len(missing),
            waited,
        )
        if missing:
            problem = unread_error(
                missing=len(missing),
                unreachable=self._unreachable(),
                errors=list(self._errors),
                bootstrap_servers=self.bootstrap_servers,
                topic=self.topic,
            )
            if problem is not None:
                raise VerificationError(problem)
        return records, timed_out, waited

    def _unreachable(self) -> str | None:
        """None when Kafka answers for every partition read now, else why not.

        Raises ``VerificationError`` when Kafka answers but the topic is gone.
        """
        deadline = time.monotonic() + REACH_TIMEOUT_S
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=REACH_TIMEOUT_S)
            topic = metadata.topics.get(self.topic)
            if topic is None or topic.error is not None:
                # Kafka answers, but not for the topic: not a lost broker.
                problem = "the topic is gone" if topic is None else topic.error.str()
                raise VerificationError(
                    f"reading {self.topic}: {problem}; lost/duplicate counts are unknown"
                )
            for tp in self._start:
                left = max(deadline - time.monotonic(), 0.1)
                # Asks each partition's leader, so a leader nobody can reach shows.
                self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, tp.partition), timeout=left, cached=False
                )
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            return error.str() if isinstance(error, KafkaError) else str(exc)
        return None

    def close(self) -> None:
        self._consumer.close()
