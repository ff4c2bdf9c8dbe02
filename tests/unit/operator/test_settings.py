"""Operator settings from HELLO_OPERATOR_* variables."""

from __future__ import annotations

import os

import pytest

from hello_core.errors import ConfigError
from hello_core.kafka import admin_config
from hello_core.settings import load_settings
from hello_operator.handlers import offsets_consumer_config
from hello_operator.settings import OperatorSettings


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HELLO_OPERATOR_"):
            monkeypatch.delenv(name)


def test_defaults_point_only_at_loopback() -> None:
    settings = load_settings(OperatorSettings)
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.metrics_host == "127.0.0.1"
    assert settings.consumer_bootstrap() == "127.0.0.1:9092"
    assert settings.namespaces == []


def test_nested_and_list_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELLO_OPERATOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("HELLO_OPERATOR_NAMESPACES", '["shop", "billing"]')
    monkeypatch.setenv("HELLO_OPERATOR_CONSUMER_BOOTSTRAP_SERVERS", "kafka.svc:9092")
    settings = load_settings(OperatorSettings)
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert settings.namespaces == ["shop", "billing"]
    assert settings.consumer_bootstrap() == "kafka.svc:9092"


def test_bad_values_are_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_OPERATOR_KAFKA_TIMEOUT_SECONDS", "0")
    with pytest.raises(ConfigError, match="HELLO_OPERATOR_KAFKA_TIMEOUT_SECONDS"):
        load_settings(OperatorSettings)


def test_kafka_security_settings_reach_both_clients_the_operator_creates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the chart's commonEnv sets for a Strimzi SCRAM-SHA-512 listener over TLS.
    monkeypatch.setenv("HELLO_OPERATOR_KAFKA__BOOTSTRAP_SERVERS", "main-kafka-bootstrap:9093")
    monkeypatch.setenv("HELLO_OPERATOR_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HELLO_OPERATOR_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("HELLO_OPERATOR_KAFKA__SASL_USERNAME", "hello-operator")
    monkeypatch.setenv("HELLO_OPERATOR_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv(
        "HELLO_OPERATOR_KAFKA__SSL_CA_LOCATION", "/etc/hello-platform/kafka-ca/ca.crt"
    )
    settings = load_settings(OperatorSettings)
    expected = {
        "bootstrap.servers": "main-kafka-bootstrap:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "hello-operator",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/hello-platform/kafka-ca/ca.crt",
    }
    admin = admin_config(settings.kafka)
    offsets = offsets_consumer_config(settings.kafka, group_id="hello-consumer")
    for config in (admin, offsets):
        assert {k: config.get(k) for k in expected} == expected
    assert offsets["group.id"] == "hello-consumer"
    assert offsets["enable.auto.commit"] is False
    # The password is never shown by the settings themselves.
    assert "s3cret" not in repr(settings)
    assert settings.consumer_bootstrap() == "main-kafka-bootstrap:9093"
