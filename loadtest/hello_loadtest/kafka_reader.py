"""Reading the output topic back to verify delivery (the I/O half of ``verify``).

``mark()`` notes each partition's end offset before the run; ``read()``
afterwards reads from there with ``isolation.level=read_committed`` (the
consumer writes transactionally, so aborted records must stay invisible)
until every expected id has been seen, then a little longer to catch
duplicates, or until the timeout.

Partitions are assigned directly, with no consumer group join: nothing is
committed and the pipeline's own groups are left alone.
"""

from __future__ import annotations

import logging
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from hello_core.envelope import Greeting
from hello_core.errors import EnvelopeError
from hello_core.kafka import consumer_config
from hello_core.settings import KafkaSettings
from hello_loadtest.verify import Delivered

logger = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 10.0
POLL_BATCH = 500


class VerificationError(RuntimeError):
    """The output topic could not be read."""


class GreetingReader:
    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.topic = topic
        config = consumer_config(settings, group_id=f"hello-load-verify-{uuid.uuid4().hex[:12]}")
        self._consumer = Consumer(config)
        self._start: list[TopicPartition] = []

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
        """Records since ``mark``: (records, timed out, seconds spent)."""
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
        return records, timed_out, waited

    def close(self) -> None:
        self._consumer.close()
