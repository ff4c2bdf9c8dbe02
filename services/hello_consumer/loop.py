"""The poll loop: consume a batch, write its outputs and offsets in one transaction.

Exactly-once: each batch's greetings, dead letters and consumed offsets are
committed atomically by a transactional producer (Kafka's consume-transform-
produce pattern, KIP-447 group metadata), and readers of the output topic
use ``isolation.level=read_committed``. A crash or abort between
``begin_transaction`` and ``commit_transaction`` leaves nothing visible; the
batch is consumed again from the last committed offsets.

Failures:

- a record we cannot process -> dead-letter topic, inside the same transaction;
- an abortable transaction error -> abort, rewind to the batch start, retry;
- a retriable commit error -> retry the commit, until the transaction timeout;
- a commit still unanswered after the transaction timeout (librdkafka can keep
  timing out after a broker stall), an abort that fails, or a fatal producer
  error (e.g. fenced after a stall longer than the transaction timeout) -> a
  new producer with the same transactional id, whose initialisation makes the
  coordinator settle the old transaction, then resume from the committed
  offsets, which say whether it landed. At most 3 times in 5 minutes, then exit.
  The batch's partitions stay paused until those offsets can be read, while
  the loop keeps polling, so the group membership survives the wait; a
  rebalance that moves them ends the pause, and after stall_seconds without
  an answer the process exits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from hello_consumer.processing import InputRecord, OutputRecord, Processor, header
from hello_consumer.settings import ConsumerSettings
from hello_core import telemetry
from hello_core.kafka import admin_config, consumer_config, producer_config

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

MESSAGES = Counter(
    "hello_consumer_messages_total", "Input records handled, by outcome.", ["outcome"]
)
ABORTS = Counter("hello_consumer_transaction_aborts_total", "Transactions aborted and retried.")
PRODUCER_REPLACEMENTS = Counter(
    "hello_consumer_producer_replacements_total",
    "Transactional producers replaced after a fatal error (e.g. fenced after a broker stall).",
)
RETRIES = Counter("hello_consumer_processing_retries_total", "Retries of processing steps.")
BATCH_SECONDS = Histogram(
    "hello_consumer_batch_seconds",
    "Time to process and commit one batch.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
END_TO_END_SECONDS = Histogram(
    "hello_consumer_end_to_end_seconds",
    "From the API publishing a request to its greeting being written.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# Timeouts for transactional calls; librdkafka retries inside them.
TXN_CALL_TIMEOUT = 30.0
# A blocking Kafka call still running this long has ignored its own timeout
# (librdkafka can hang in send_offsets_to_transaction after a broker restart,
# confluentinc/librdkafka#5456 and #5511): the process exits to be restarted.
STUCK_CALL_SECONDS = TXN_CALL_TIMEOUT + 15.0
# After a commit of unknown outcome the batch's partitions are paused until
# their committed offsets can be read. Each read is short so that the loop
# keeps polling between tries: a consumer blocked in committed() cannot serve
# the rejoin that a broker stall forces, and its OffsetFetch can then go
# unanswered for minutes. After HELLO_CONSUMER_STALL_SECONDS without an
# answer the process exits to be restarted.
SETTLE_READ_TIMEOUT = 5.0


# Until the coordinator has written the previous commit's markers, it answers
# the next transaction's first requests with CONCURRENT_TRANSACTIONS, and
# librdkafka retries after retry.backoff.ms: its default of 100 ms doubled
# each batch's cycle here (27 ms instead of ~50 ms at 1,000 msg/s, and half
# the end-to-end p50). librdkafka backs off exponentially from this value up
# to retry.backoff.max.ms, so a broker in trouble is not hammered.
TXN_RETRY_BACKOFF_MS = 10


def transactional_producer_config(
    settings: ConsumerSettings, transactional_id: str
) -> dict[str, Any]:
    """The consumer's transactional producer; ``KAFKA__EXTRA`` may set retry.backoff.ms."""
    config = producer_config(
        settings.kafka,
        linger_ms=0,
        # librdkafka requires message.timeout.ms <= transaction.timeout.ms.
        delivery_timeout_ms=settings.transaction_timeout_ms,
        transactional_id=transactional_id,
    )
    config.setdefault("retry.backoff.ms", TXN_RETRY_BACKOFF_MS)
    config["transaction.timeout.ms"] = settings.transaction_timeout_ms
    return config


class FatalConsumerError(RuntimeError):
    """The loop cannot continue; the process should exit and be restarted."""


class CommitOutcomeUnknownError(Exception):
    """``commit_transaction`` kept timing out: the batch may or may not have landed."""

    def __init__(self, error: KafkaError, waited: float) -> None:
        super().__init__(f"commit unanswered after {waited:.1f}s: {error.str()}")
        self.error = error


class ConsumerLoop:
    def __init__(
        self,
        settings: ConsumerSettings,
        *,
        processor: Processor | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.processor = processor or Processor(
            output_topic=settings.output_topic,
            dead_letter_topic=settings.dead_letter_topic,
            max_attempts=settings.max_attempts,
            backoff_seconds=settings.retry_backoff_seconds,
            backoff_max_seconds=settings.retry_backoff_max_seconds,
        )
        self._clock = clock
        self.stopping = threading.Event()
        self.last_turn = clock()
        self.assignment: set[tuple[str, int]] = set()
        self.ready = False
        # Set while partitions are lost or batches keep failing; liveness fails
        # when either lasts longer than stall_seconds, so a stuck client is restarted.
        self._lost_since: float | None = None
        self._failing_since: float | None = None
        self._failures = 0
        self._producer_replacements: list[float] = []
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        # The blocking Kafka call in progress and when it started, for stuck_call().
        self._in_call: tuple[str, float] | None = None
        # Set when librdkafka failed to fetch the committed offsets of a new
        # assignment; see _reassign_at_committed().
        self._reassign_wanted = False
        # Paused partitions whose committed offsets are not known yet, with the
        # first offset of the batch whose commit went unanswered; see _settle().
        self._unsettled: dict[tuple[str, int], int] = {}
        self._unsettled_since: float | None = None
        self._next_settle_try = 0.0

    # -- probes ------------------------------------------------------------

    def stuck_call(self) -> tuple[str, float] | None:
        """The blocking Kafka call that has outlived its timeout, and for how long."""
        call = self._in_call
        if call is None:
            return None
        name, since = call
        waited = self._clock() - since
        return (name, waited) if waited > STUCK_CALL_SECONDS else None

    @contextlib.contextmanager
    def _calling(self, name: str) -> Iterator[None]:
        self._in_call = (name, self._clock())
        try:
            yield
        finally:
            self._in_call = None

    def live(self) -> tuple[bool, str]:
        now = self._clock()
        limit = self.settings.stall_seconds
        stalled = now - self.last_turn
        if stalled > limit:
            return False, f"poll loop stalled for {stalled:.0f}s"
        if self._lost_since is not None and now - self._lost_since > limit:
            return False, f"partitions lost {now - self._lost_since:.0f}s ago and not reassigned"
        if self._failing_since is not None and now - self._failing_since > limit:
            return False, (
                f"{self._failures} batches in a row failed to commit over "
                f"{now - self._failing_since:.0f}s"
            )
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        if not self.ready:
            return False, "not yet joined the group"
        return True, f"assigned {len(self.assignment)} partition(s)"

    # -- lifecycle ---------------------------------------------------------

    def _create_producer(self) -> Producer:
        settings = self.settings
        transactional_id = settings.effective_transactional_id()
        producer = Producer(transactional_producer_config(settings, transactional_id))
        logger.info("initialising transactions", extra={"transactional_id": transactional_id})
        with self._calling("init_transactions"):
            producer.init_transactions(TXN_CALL_TIMEOUT)
        return producer

    def _create_clients(self) -> tuple[Consumer, Producer]:
        settings = self.settings
        producer = self._create_producer()
        consumer = Consumer(
            consumer_config(
                settings.kafka,
                group_id=settings.group_id,
                auto_offset_reset=settings.auto_offset_reset,
            )
            | {
                "session.timeout.ms": settings.session_timeout_ms,
                "max.poll.interval.ms": settings.max_poll_interval_ms,
            }
        )
        consumer.subscribe(
            [settings.input_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        return consumer, producer

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assignment |= {(p.topic, p.partition) for p in partitions}
        # A new assignment starts from the committed offsets: nothing left to settle.
        self._release_held(consumer, partitions)
        self.ready = True
        self._lost_since = None
        # The cooperative protocol reports only what a rebalance adds, often nothing.
        logger.log(
            logging.INFO if partitions else logging.DEBUG,
            "partitions assigned",
            extra={
                "group": self.settings.group_id,
                "partitions": _names(partitions),
                "assigned_total": len(self.assignment),
            },
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Callbacks run inside consume(), between batches: no transaction is
        # open, so everything processed so far is already committed.
        self.assignment -= {(p.topic, p.partition) for p in partitions}
        self._release_held(consumer, partitions)
        logger.info(
            "partitions revoked",
            extra={"group": self.settings.group_id, "partitions": _names(partitions)},
        )

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assignment -= {(p.topic, p.partition) for p in partitions}
        self._release_held(consumer, partitions)
        if self._lost_since is None:
            self._lost_since = self._clock()
        logger.warning(
            "partitions lost; the group will reassign them",
            extra={"group": self.settings.group_id, "partitions": _names(partitions)},
        )

    def run(self) -> None:
        """Consume until ``stopping`` is set, then commit, leave the group and return."""
        self._check_topics()
        if self.stopping.is_set():
            return
        consumer, producer = self._create_clients()
        self._consumer, self._producer = consumer, producer
        logger.info(
            "consumer started",
            extra={
                "group": self.settings.group_id,
                "input_topic": self.settings.input_topic,
                "output_topic": self.settings.output_topic,
                "dead_letter_topic": self.settings.dead_letter_topic,
            },
        )
        try:
            while not self.stopping.is_set():
                self.last_turn = self._clock()
                if self._reassign_wanted:
                    self._reassign_at_committed(consumer)
                if self._unsettled:
                    self._settle(consumer)
                batch = self._next_batch(consumer)
                if batch:
                    self._process_once(consumer, batch)
        finally:
            self._close(consumer, self._producer)

    def _check_topics(self) -> None:
        """Refuse to start on a topic that does not exist, naming the setting to fix.

        Waits (until stopped) while no broker answers, so a consumer started
        before Kafka simply waits for it.
        """
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(admin_config(self.settings.kafka))
        wanted = {
            "HELLO_CONSUMER_INPUT_TOPIC": self.settings.input_topic,
            "HELLO_CONSUMER_OUTPUT_TOPIC": self.settings.output_topic,
            "HELLO_CONSUMER_DEAD_LETTER_TOPIC": self.settings.dead_letter_topic,
        }
        while not self.stopping.is_set():
            self.last_turn = self._clock()  # waiting for Kafka is not a stall
            try:
                existing = set(admin.list_topics(timeout=10).topics)
            except KafkaException as exc:
                logger.warning(
                    "kafka not reachable yet, waiting",
                    extra={
                        "bootstrap_servers": self.settings.kafka.bootstrap_servers,
                        "reason": exc.args[0].str(),
                    },
                )
                self.stopping.wait(2)
                continue
            missing = [
                f"{topic!r} ({env})" for env, topic in wanted.items() if topic not in existing
            ]
            if missing:
                raise FatalConsumerError(
                    "topics do not exist: "
                    + ", ".join(missing)
                    + "; create them or fix the setting"
                )
            return

    def _process_once(self, consumer: Consumer, batch: list[Message]) -> None:
        """Process and commit one batch; on failure abort, rewind and back off.

        The retry happens in the poll loop, not here: polling lets the consumer
        serve rebalances and rejoin its group after a broker stall (a batch
        retried in place keeps failing with stale group metadata), and lets a
        SIGTERM stop it.
        """
        assert self._producer is not None
        try:
            self._process_batch(consumer, self._producer, batch)
        except CommitOutcomeUnknownError as exc:
            self._note_failure()
            logger.warning(
                "commit outcome unknown; replacing the producer and resuming "
                "from the committed offsets",
                extra={"code": exc.error.name(), "reason": str(exc), "records": len(batch)},
            )
            self._replace_producer(exc.error)
            self._hold_until_committed(consumer, batch)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            self._note_failure()
            logger.warning(
                "batch failed, aborting its transaction and rewinding",
                extra={
                    "code": error.name(),
                    "reason": error.str(),
                    "fatal": error.fatal(),
                    "records": len(batch),
                    "failures_in_a_row": self._failures,
                },
            )
            if not error.fatal() and self._abort(self._producer):
                self._rewind(consumer, batch)
            else:
                self._replace_producer(error)
                self._hold_until_committed(consumer, batch)
            self.stopping.wait(self._backoff())
        else:
            if self._failures:
                logger.info("batches commit again", extra={"failures": self._failures})
            self._failures = 0
            self._failing_since = None

    def _backoff(self) -> float:
        return min(
            self.settings.retry_backoff_seconds * 2.0 ** (max(self._failures, 1) - 1),
            self.settings.retry_backoff_max_seconds,
        )

    def _note_failure(self) -> None:
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = self._clock()

    def _next_batch(self, consumer: Consumer) -> list[Message]:
        # Block for the first record only, then take what is already fetched:
        # a lone record is processed at once instead of waiting for a full batch.
        first = consumer.consume(1, timeout=self.settings.poll_timeout_seconds)
        if not first:
            return []
        rest = consumer.consume(self.settings.batch_max_messages - 1, timeout=0)
        records = []
        for message in first + rest:
            error = message.error()
            if error is None:
                where = (message.topic(), message.partition())
                if where in self._unsettled:
                    continue  # fetched before the pause; read again once settled
                if where not in self.assignment:
                    continue  # revoked during the second consume(): its new owner reads it
                records.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                continue
            elif error.fatal():
                raise FatalConsumerError(f"consumer error: {error.str()}")
            elif _offsets_not_fetched(error):
                self._reassign_wanted = True
                logger.warning(
                    "committed offsets of the assignment not fetched; re-assigning them "
                    "at their committed offsets",
                    extra={"code": error.name(), "reason": error.str()},
                )
            else:
                # A client-level error (e.g. max.poll.interval exceeded) names no
                # partition; its partition() is a meaningless 0.
                fields: dict[str, Any] = {"code": error.name(), "reason": error.str()}
                if message.topic():
                    fields |= {"topic": message.topic(), "partition": message.partition()}
                logger.warning("consume error", extra=fields)
        return records

    def _process_batch(self, consumer: Consumer, producer: Producer, batch: list[Message]) -> None:
        started = time.perf_counter()
        producer.begin_transaction()
        next_offsets: dict[tuple[str, int], int] = {}
        outputs: list[OutputRecord] = []
        retries_before = self.processor.retries
        for message in batch:
            record = InputRecord(
                topic=str(message.topic()),
                partition=int(message.partition() or 0),
                offset=int(message.offset() or 0),
                key=message.key(),
                value=message.value(),
                headers=_header_list(message.headers()),
            )
            with tracer.start_as_current_span(
                "process greeting request",
                context=telemetry.extract_context(record.headers),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.destination.name": record.topic,
                    "messaging.destination.partition.id": str(record.partition),
                    "messaging.kafka.offset": record.offset,
                },
            ) as span:
                output = self.processor.handle(record)
                if output.message_id:
                    span.set_attribute("messaging.message.id", output.message_id)
                if output.dead_letter:
                    span.set_status(trace.StatusCode.ERROR, "dead-lettered")
            if output.dead_letter:
                logger.warning(
                    "dead-lettering record",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "key": (record.key or b"").decode("utf-8", "replace")[:64],
                        "dead_letter_topic": output.topic,
                        "reason": (header(output.headers, "dlt.reason") or b"").decode(
                            "utf-8", "replace"
                        ),
                    },
                )
            self._produce(producer, output)
            outputs.append(output)
            next_offsets[(record.topic, record.partition)] = record.offset + 1
        with self._calling("send_offsets_to_transaction"):
            producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
                consumer.consumer_group_metadata(),
                TXN_CALL_TIMEOUT,
            )
        self._commit(producer)

        # Metrics only after the commit: an aborted batch is counted once, when it lands.
        RETRIES.inc(self.processor.retries - retries_before)
        for output in outputs:
            MESSAGES.labels("dead_lettered" if output.dead_letter else "processed").inc()
            if output.end_to_end_ms is not None:
                END_TO_END_SECONDS.observe(max(output.end_to_end_ms, 0) / 1000)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        logger.debug(
            "batch committed",
            extra={
                "records": len(batch),
                "offsets": ",".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(next_offsets.items())),
            },
        )

    def _produce(self, producer: Producer, output: OutputRecord) -> None:
        while True:
            try:
                producer.produce(
                    output.topic, value=output.value, key=output.key, headers=output.headers
                )
                return
            except BufferError:
                # Local queue full: serve delivery reports to make room.
                producer.poll(0.1)

    def _commit(self, producer: Producer) -> None:
        """Commit, retrying retriable errors for up to the transaction timeout.

        By then the coordinator has either committed the transaction or will
        abort it; waiting longer cannot help, and librdkafka has been seen to
        time out on every retry after a broker stall.
        """
        started = self._clock()
        limit = self._transaction_timeout()
        while True:
            remaining = limit - (self._clock() - started)
            try:
                with self._calling("commit_transaction"):
                    producer.commit_transaction(min(max(remaining, 1.0), TXN_CALL_TIMEOUT))
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if not error.retriable() or error.txn_requires_abort() or error.fatal():
                    raise
                waited = self._clock() - started
                if waited >= limit:
                    raise CommitOutcomeUnknownError(error, waited) from exc
                logger.warning(
                    "commit failed, retrying",
                    extra={
                        "code": error.name(),
                        "reason": error.str(),
                        "waited_s": round(waited, 1),
                    },
                )

    def _abort(self, producer: Producer) -> bool:
        """Abort the open transaction; False when the producer could not.

        Such a producer is replaced: the new one's initialisation makes the
        coordinator abort whatever the old one left open.
        """
        ABORTS.inc()
        try:
            with self._calling("abort_transaction"):
                producer.abort_transaction(self._transaction_timeout())
            return True
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            logger.warning("abort failed", extra={"code": error.name(), "reason": error.str()})
            return False

    def _transaction_timeout(self) -> float:
        return self.settings.transaction_timeout_ms / 1000

    def _replace_producer(self, error: KafkaError) -> None:
        """Start a new transactional producer with the same transactional id.

        For a producer that failed fatally (e.g. fenced: a broker stall longer
        than transaction.timeout.ms makes the coordinator abort our
        transaction and bump the epoch) or that cannot finish its transaction.
        Re-initialising is the way back, as Kafka Streams does. If it keeps
        happening, another live instance may share our transactional id: then
        give up instead of fencing each other in turn.
        """
        now = self._clock()
        window = 300.0
        self._producer_replacements = [
            t for t in self._producer_replacements if now - t < window
        ] + [now]
        if len(self._producer_replacements) > 3:
            raise FatalConsumerError(
                f"producer replaced {len(self._producer_replacements)} times in "
                f"{window:.0f}s (last: {error.str()}): Kafka keeps failing our transactions, "
                f"or another instance uses transactional id "
                f"{self.settings.effective_transactional_id()!r}"
            )
        logger.warning(
            "replacing the transactional producer",
            extra={"code": error.name(), "reason": error.str()},
        )
        PRODUCER_REPLACEMENTS.inc()
        old, self._producer = self._producer, None
        if old is not None:
            # Unsent records belong to the transaction being given up.
            with contextlib.suppress(KafkaException, RuntimeError):
                old.purge()
        while True:
            try:
                self._producer = self._create_producer()
                return
            except KafkaException as exc:
                init_error: KafkaError = exc.args[0]
                if init_error.fatal() or not init_error.retriable() or self.stopping.is_set():
                    raise FatalConsumerError(
                        f"cannot start a new transactional producer: {init_error.str()}"
                    ) from exc
                logger.warning(
                    "initialising transactions failed, retrying",
                    extra={"code": init_error.name(), "reason": init_error.str()},
                )
                self.last_turn = self._clock()  # each try is bounded: waiting, not stuck

    def _reassign_at_committed(self, consumer: Consumer) -> None:
        """Assign our partitions again, each at its committed offset.

        When the group coordinator moved (a broker stall or restart), the
        OffsetFetch that librdkafka sends for a new assignment can fail with
        NOT_COORDINATOR for the whole request; librdkafka then never retries
        it and never starts fetching those partitions, so their lag grows
        while the consumer looks healthy (confluentinc/librdkafka#5586).
        Assigning them again with explicit offsets needs no OffsetFetch.
        Runs between batches, with no transaction open.
        """
        owned = [TopicPartition(t, p) for (t, p) in sorted(self.assignment)]
        if not owned:
            self._reassign_wanted = False
            return
        committed, unread = self._ask_committed(consumer, owned, timeout=SETTLE_READ_TIMEOUT)
        if unread is not None:
            logger.warning(
                "cannot read committed offsets yet; trying again", extra={"reason": unread}
            )
            self.stopping.wait(1)
            return
        reset = OFFSET_BEGINNING if self.settings.auto_offset_reset == "earliest" else OFFSET_END
        # A partition held after an unanswered commit and never committed
        # restarts at that batch, not at the reset point past it.
        explicit = [
            TopicPartition(
                tp.topic,
                tp.partition,
                tp.offset
                if tp.offset >= 0
                else self._unsettled.get((tp.topic, tp.partition), reset),
            )
            for tp in committed
        ]
        try:
            # librdkafka keeps a partition paused across unassign and assign.
            self._release_held(consumer, owned)
            consumer.incremental_unassign(owned)
            consumer.incremental_assign(explicit)
        except KafkaException as exc:
            raise FatalConsumerError(
                f"cannot re-assign partitions at their committed offsets: {exc.args[0].str()}"
            ) from exc
        self._reassign_wanted = False
        logger.info(
            "partitions re-assigned at their committed offsets",
            extra={"offsets": ",".join(f"{t.topic}[{t.partition}]@{t.offset}" for t in explicit)},
        )

    def _rewind(self, consumer: Consumer, batch: list[Message]) -> None:
        """Seek back to the batch's first offsets, whose outputs were not committed.

        If the consumer cannot be rewound it must not go on: consuming past
        records whose outputs were aborted would commit over them. The
        process exits instead and restarts from the committed offsets.
        """
        rewound = []
        for (topic, partition), offset in sorted(_batch_starts(batch).items()):
            if (topic, partition) not in self.assignment:
                continue  # revoked: its new owner starts from the committed offset
            try:
                consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                raise FatalConsumerError(
                    f"cannot rewind {topic}[{partition}] to {offset}: {exc.args[0].str()}"
                ) from exc
            rewound.append(f"{topic}[{partition}]@{offset}")
        logger.info("transaction aborted and rewound", extra={"offsets": ",".join(rewound) or "-"})

    def _hold_until_committed(self, consumer: Consumer, batch: list[Message]) -> None:
        """Pause the batch's partitions until their committed offsets are known.

        Used when it is unknown whether the batch's transaction landed. Its
        offsets were part of it, so the committed offset says: past the batch
        if it landed, the batch start if not. The other partitions go on,
        slowed while the coordinator does not answer: each try blocks the loop
        for up to SETTLE_READ_TIMEOUT, at most once per SETTLE_READ_TIMEOUT.
        """
        held = {tp: offset for tp, offset in _batch_starts(batch).items() if tp in self.assignment}
        if not held:
            return
        partitions = [TopicPartition(t, p) for (t, p) in sorted(held)]
        try:
            consumer.pause(partitions)
        except KafkaException as exc:
            raise FatalConsumerError(
                f"cannot pause {_names(partitions)}: {exc.args[0].str()}"
            ) from exc
        for tp, offset in held.items():
            self._unsettled.setdefault(tp, offset)
        if self._unsettled_since is None:
            # Counted from the failure, as liveness counts it.
            self._unsettled_since = self._failing_since or self._clock()
        logger.warning(
            "partitions paused until their committed offsets are known",
            extra={"partitions": _names(partitions)},
        )
        self._settle(consumer)

    def _settle(self, consumer: Consumer) -> None:
        """Resume the paused partitions at their committed offsets, once readable.

        Reading them waits for the coordinator to settle the old transaction
        (read_committed asks for stable offsets only). Each try is short and
        the loop polls between tries; without an answer for stall_seconds
        the process exits rather than guess.
        """
        if self._clock() < self._next_settle_try:
            return
        partitions = [TopicPartition(t, p) for (t, p) in sorted(self._unsettled)]
        committed, reason = self._ask_committed(consumer, partitions, timeout=SETTLE_READ_TIMEOUT)
        if reason is not None:
            # Spaced out, so that the partitions not held get turns of their own.
            self._next_settle_try = self._clock() + SETTLE_READ_TIMEOUT
            since = self._unsettled_since if self._unsettled_since is not None else self._clock()
            waited = self._clock() - since
            if waited >= self.settings.stall_seconds:
                raise FatalConsumerError(
                    f"cannot read the committed offsets of {_names(partitions)} for "
                    f"{waited:.0f}s after a commit of unknown outcome: {reason}"
                )
            logger.warning(
                "committed offsets not readable yet; partitions stay paused",
                extra={
                    "partitions": _names(partitions),
                    "reason": reason,
                    "waited_s": round(waited, 1),
                },
            )
            return
        resumed = []
        for tp in committed:
            key = (tp.topic, tp.partition)
            # No committed offset at all: the batch did not land, and nothing before it did.
            offset = tp.offset if tp.offset >= 0 else self._unsettled[key]
            try:
                consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                raise FatalConsumerError(
                    f"cannot seek {tp.topic}[{tp.partition}] to {offset}: {exc.args[0].str()}"
                ) from exc
            resumed.append(f"{tp.topic}[{tp.partition}]@{offset}")
        self._resume_held(consumer, partitions)
        logger.info("resumed from committed offsets", extra={"offsets": ",".join(resumed)})

    def _release_held(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """End the hold on any of ``partitions``: revoked, lost or assigned afresh,
        they start from their committed offsets anyway.

        librdkafka keeps an application's pause on a partition across revoke
        and assign, so a held partition must be resumed here or it would never
        be fetched again.
        """
        held = self._resume_held(consumer, partitions)
        if held:
            logger.info(
                "hold ended; partitions start from their committed offsets",
                extra={"partitions": _names(held)},
            )

    def _resume_held(
        self, consumer: Consumer, partitions: list[TopicPartition]
    ) -> list[TopicPartition]:
        """Resume and stop holding whichever of ``partitions`` are held; returns those.

        When none is held any more the unknown commit is resolved, and the
        failure state is cleared too, so an idle input does not fail /livez
        afterwards; the next batch that fails sets it again.
        """
        held = [
            TopicPartition(p.topic, p.partition)
            for p in partitions
            if (p.topic, p.partition) in self._unsettled
        ]
        if not held:
            return []
        try:
            consumer.resume(held)
        except KafkaException as exc:
            raise FatalConsumerError(f"cannot resume {_names(held)}: {exc.args[0].str()}") from exc
        for p in held:
            del self._unsettled[(p.topic, p.partition)]
        if not self._unsettled:
            self._unsettled_since = None
            self._next_settle_try = 0.0
            self._failures = 0
            self._failing_since = None
        return held

    def _ask_committed(
        self, consumer: Consumer, owned: list[TopicPartition], *, timeout: float
    ) -> tuple[list[TopicPartition], str | None]:
        """One request for the committed offsets of ``owned``, and why it failed (or None)."""
        try:
            with self._calling("committed"):
                committed: list[TopicPartition] = consumer.committed(owned, timeout=timeout)
        except KafkaException as exc:
            return [], exc.args[0].str()
        failed = [tp for tp in committed if tp.error is not None]
        if failed:
            return committed, "; ".join(f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in failed)
        return committed, None

    def _close(self, consumer: Consumer, producer: Producer | None) -> None:
        logger.info("consumer leaving group", extra={"group": self.settings.group_id})
        try:
            with self._calling("close"):
                consumer.close()
        except KafkaException as exc:
            logger.warning("leaving the group failed", extra={"reason": exc.args[0].str()})
        if producer is None:
            return
        try:
            remaining = producer.flush(self.settings.shutdown_grace_seconds)
        except KafkaException as exc:  # a fenced producer refuses even to flush
            logger.warning("producer flush failed", extra={"reason": exc.args[0].str()})
        else:
            if remaining:
                logger.error("producer closed with undelivered records", extra={"count": remaining})
        logger.info("consumer stopped", extra={"group": self.settings.group_id})


# Coordinator errors with which librdkafka gives up fetching a new
# assignment's committed offsets (reported as "Failed to fetch committed offsets").
_COORDINATOR_ERRORS = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)


def _offsets_not_fetched(error: KafkaError) -> bool:
    return error.code() in _COORDINATOR_ERRORS and "committed offsets" in error.str()


def _batch_starts(batch: list[Message]) -> dict[tuple[str, int], int]:
    """The first offset of each partition in the batch."""
    starts: dict[tuple[str, int], int] = {}
    for message in batch:
        key = (str(message.topic()), int(message.partition() or 0))
        starts.setdefault(key, int(message.offset() or 0))
    return starts


def _names(partitions: list[TopicPartition]) -> str:
    return ",".join(f"{p.topic}[{p.partition}]" for p in partitions) or "-"


def _header_list(headers: object) -> list[tuple[str, str | bytes | None]]:
    if not headers:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)  # type: ignore[call-overload, no-any-return]
