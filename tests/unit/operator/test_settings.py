"""Operator settings from HELLO_OPERATOR_* variables."""

from __future__ import annotations

import os

import pytest

from hello_core.errors import ConfigError
from hello_core.settings import load_settings
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
