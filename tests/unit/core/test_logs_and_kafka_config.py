from __future__ import annotations

import json
import logging

import pytest

from hello_core.kafka import consumer_config, producer_config
from hello_core.logs import MAX_FIELD_CHARS, JsonFormatter, KeyValueFormatter, configure
from hello_core.settings import KafkaSettings


def make_record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("hello.test", logging.WARNING, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_key_value_lines_carry_extra_fields_and_quote_spaces() -> None:
    line = KeyValueFormatter().format(
        make_record("publish failed", topic="default-topic", partition=3, reason="no leader now")
    )
    assert " level=warning logger=hello.test " in line
    assert 'msg="publish failed"' in line
    assert line.endswith('topic=default-topic partition=3 reason="no leader now"')


def test_json_lines_are_one_object_with_truncated_untrusted_fields() -> None:
    line = JsonFormatter().format(make_record("bad name", user_name="n" * 1000, offset=12))
    data = json.loads(line)
    assert data["msg"] == "bad name"
    assert data["offset"] == 12
    assert len(data["user_name"]) == MAX_FIELD_CHARS + 1  # plus the ellipsis


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
