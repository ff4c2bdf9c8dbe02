from __future__ import annotations

import json
import logging

import pytest
from confluent_kafka import KafkaException, Producer

from hello_core.kafka import consumer_config, invalid_config, producer_config
from hello_core.logs import (
    MAX_FIELD_CHARS,
    JsonFormatter,
    KeyValueFormatter,
    Throttle,
    configure,
    iso_timestamp,
)
from hello_core.settings import KafkaSettings

# 2023-11-14T22:13:20.123Z
CREATED = 1_700_000_000.123456


def make_record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("hello.test", logging.WARNING, __file__, 1, msg, None, None)
    record.created = CREATED
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_key_value_lines_carry_extra_fields_and_quote_spaces() -> None:
    line = KeyValueFormatter().format(
        make_record("publish failed", topic="default-topic", partition=3, reason="no leader now")
    )
    assert line == (
        'ts=2023-11-14T22:13:20.123Z level=warning logger=hello.test msg="publish failed" '
        'topic=default-topic partition=3 reason="no leader now"'
    )


def test_json_lines_are_one_object_with_truncated_untrusted_fields() -> None:
    line = JsonFormatter().format(make_record("bad name", user_name="n" * 1000, offset=12))
    data = json.loads(line)
    assert data["ts"] == "2023-11-14T22:13:20.123Z"
    assert data["msg"] == "bad name"
    assert data["offset"] == 12
    assert len(data["user_name"]) == MAX_FIELD_CHARS + 1  # plus the ellipsis


def test_a_logger_call_with_extra_lands_as_json_fields() -> None:
    record = logging.getLogger("hello.test").makeRecord(
        "hello.test",
        logging.INFO,
        __file__,
        1,
        "published",
        None,
        None,
        extra={"message_id": "ab" * 16, "topic": "t", "partition": 0, "offset": 7},
    )
    data = json.loads(JsonFormatter().format(record))
    assert {k: data[k] for k in ("msg", "message_id", "topic", "partition", "offset")} == {
        "msg": "published",
        "message_id": "ab" * 16,
        "topic": "t",
        "partition": 0,
        "offset": 7,
    }


def test_timestamps_are_utc_iso_8601_with_milliseconds() -> None:
    assert iso_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert iso_timestamp(CREATED) == "2023-11-14T22:13:20.123Z"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttle_logs_the_first_then_one_per_interval_with_the_skipped_count() -> None:
    clock = FakeClock()
    throttle = Throttle(5.0, clock=clock)
    assert throttle("publish failed") == 0
    assert [throttle("publish failed") for _ in range(3)] == [None, None, None]
    clock.now += 4.9
    assert throttle("publish failed") is None
    clock.now += 0.1
    assert throttle("publish failed") == 4
    assert throttle("publish failed") is None
    clock.now += 5
    assert throttle("publish failed") == 1
    clock.now += 60
    assert throttle("publish failed") == 0


def test_throttle_counts_each_kind_on_its_own() -> None:
    clock = FakeClock()
    throttle = Throttle(5.0, clock=clock)
    assert throttle("publish failed") == 0
    assert throttle("producer queue full") == 0
    assert throttle("publish failed") is None
    clock.now += 5
    assert throttle("producer queue full") == 0
    assert throttle("publish failed") == 1


def test_throttle_flush_hands_over_the_counts_no_later_line_carried() -> None:
    clock = FakeClock()
    throttle = Throttle(5.0, clock=clock)
    assert throttle("publish failed") == 0
    assert [throttle("publish failed") for _ in range(999)] == [None] * 999
    assert throttle("producer queue full") == 0
    assert throttle.flush() == []  # within the interval: a later line may still carry it
    clock.now += 5
    assert throttle.flush() == [("publish failed", 999)]  # nothing skipped for the other
    assert throttle.flush() == []  # counted once
    assert throttle("publish failed") is None  # the flush counts as the kind's line
    assert throttle.flush(force=True) == [("publish failed", 1)]


def test_unknown_librdkafka_property_becomes_a_config_error_naming_the_variable() -> None:
    with pytest.raises(KafkaException) as info:
        Producer({"no.such.prop": 1})
    error = invalid_config(info.value, env_prefix="HELLO_API_")
    assert str(error) == (
        'invalid Kafka client configuration: No such configuration property: "no.such.prop" '
        "(check HELLO_API_KAFKA__EXTRA and related settings)"
    )


def test_out_of_range_librdkafka_value_becomes_a_config_error_without_a_newline() -> None:
    with pytest.raises(KafkaException) as info:
        Producer({"linger.ms": 9_999_999})
    assert str(invalid_config(info.value, env_prefix="HELLO_CONSUMER_")) == (
        "invalid Kafka client configuration: Configuration property "
        '"queue.buffering.max.ms" value 1e+07 is outside allowed range 0..900000 '
        "(check HELLO_CONSUMER_KAFKA__EXTRA and related settings)"
    )


def test_other_errors_are_not_config_errors() -> None:
    assert invalid_config(RuntimeError("boom"), env_prefix="HELLO_API_") is None


def test_configure_replaces_handlers_and_silences_librdkafka_noise() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure("INFO", "json")
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert logging.getLogger("librdkafka").level == logging.CRITICAL
        configure("DEBUG", "text")
        assert logging.getLogger("librdkafka").level == logging.DEBUG
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_producer_never_loses_or_duplicates_acknowledged_records() -> None:
    config = producer_config(KafkaSettings(), transactional_id="t-1")
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["transactional.id"] == "t-1"
    assert config["bootstrap.servers"] == "127.0.0.1:9092"


def test_consumer_commits_only_when_told_and_reads_committed_data() -> None:
    config = consumer_config(KafkaSettings(), group_id="g", auto_offset_reset="latest")
    assert config["enable.auto.commit"] is False
    assert config["enable.auto.offset.store"] is False
    assert config["isolation.level"] == "read_committed"
    assert config["auto.offset.reset"] == "latest"


def test_sasl_settings_are_passed_with_librdkafka_names() -> None:
    settings = KafkaSettings(
        bootstrap_servers="k:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password="p",  # type: ignore[arg-type]
        ssl_ca_location="/ca.pem",
        extra={"socket.keepalive.enable": True},
    )
    config = producer_config(settings)
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl.username"], config["sasl.password"]) == ("u", "p")
    assert config["ssl.ca.location"] == "/ca.pem"
    assert config["socket.keepalive.enable"] is True


@pytest.mark.parametrize("servers", ["", "host", "host:abc", ":9092", "h:0", "h:70000"])
def test_bootstrap_servers_must_be_host_port(servers: str) -> None:
    with pytest.raises(ValueError, match=r"host:port|at least one"):
        KafkaSettings(bootstrap_servers=servers)
