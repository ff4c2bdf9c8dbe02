from hello_loadtest.stats import percentiles
from hello_loadtest.verify import Delivered, ReaderError, reconcile, unread_error

from .hdr import hdr


def test_reconcile_counts_lost_duplicated_and_foreign_records():
    delivered = [
        Delivered("a", 1_000, 1_004),
        Delivered("b", 1_000, 1_010),
        Delivered("a", 1_000, 1_050),  # a duplicate: its latency is not counted again
        Delivered("zz", 1_000, 1_001),  # another run's record
    ]
    result = reconcile(["a", "b", "c"], delivered)
    assert (result.expected, result.received, result.lost) == (3, 3, 1)
    assert (result.duplicates, result.unexpected) == (1, 1)
    e2e = percentiles(result.e2e)
    assert (e2e.count, e2e.min, e2e.max) == (2, hdr(4.0), hdr(10.0))


def test_reconcile_with_everything_delivered_once_reports_no_loss():
    ids = [f"id{i}" for i in range(100)]
    result = reconcile(ids, [Delivered(i, 0, n) for n, i in enumerate(ids)])
    assert (result.lost, result.duplicates, result.received) == (0, 0, 100)
    assert percentiles(result.e2e).p50 == hdr(49.0)


def test_a_greeting_processed_in_the_same_millisecond_counts_as_the_floor_value():
    result = reconcile(["a"], [Delivered("a", 5, 5)])
    assert result.e2e.get_total_count() == 1
    assert percentiles(result.e2e).max == 0.001


DOWN = ReaderError("_ALL_BROKERS_DOWN", "1/1 brokers are down")
REFUSED = ReaderError(
    "_TRANSPORT",
    "127.0.0.1:9092/1: Connect to ipv4#127.0.0.1:9092 failed: Connection refused "
    "(after 0ms in state CONNECT)",
)
METADATA_FAILED = "Failed to get metadata: Local: Broker transport failure"


def _unread(missing, unreachable, errors):
    return unread_error(
        missing=missing,
        unreachable=unreachable,
        errors=errors,
        bootstrap_servers="127.0.0.1:9092",
        topic="greetings",
    )


def test_kafka_unreachable_after_reading_makes_the_missing_ids_unread_not_lost():
    assert _unread(222, METADATA_FAILED, [DOWN, REFUSED, DOWN]) == (
        "lost contact with Kafka at 127.0.0.1:9092 while reading 'greetings': "
        "127.0.0.1:9092/1: Connect to ipv4#127.0.0.1:9092 failed: Connection refused "
        "(after 0ms in state CONNECT); lost/duplicate counts are unknown"
    )


def test_the_reason_is_the_last_specific_error_then_all_brokers_down_then_the_check():
    later = ReaderError("_RESOLVE", "kafka-0.kafka:9092/bootstrap: Failed to resolve")
    assert _unread(1, METADATA_FAILED, [REFUSED, later, DOWN]) == (
        "lost contact with Kafka at 127.0.0.1:9092 while reading 'greetings': "
        "kafka-0.kafka:9092/bootstrap: Failed to resolve; lost/duplicate counts are unknown"
    )
    assert _unread(1, METADATA_FAILED, [DOWN]) == (
        "lost contact with Kafka at 127.0.0.1:9092 while reading 'greetings': "
        "1/1 brokers are down; lost/duplicate counts are unknown"
    )
    # No error reported while reading (a frozen broker, say): the failed check says why.
    assert _unread(1, METADATA_FAILED, []) == (
        "lost contact with Kafka at 127.0.0.1:9092 while reading 'greetings': "
        "Failed to get metadata: Local: Broker transport failure; "
        "lost/duplicate counts are unknown"
    )


def test_ids_missing_from_a_reachable_kafka_are_lost_even_after_errors():
    # Kafka answered after the reading: what was not read was not there (the
    # consumer is down, say), whatever librdkafka reported on the way.
    assert _unread(222, None, []) is None
    assert _unread(222, None, [DOWN, REFUSED]) is None


def test_errors_do_not_matter_when_every_id_was_read():
    assert _unread(0, METADATA_FAILED, [DOWN, REFUSED]) is None
