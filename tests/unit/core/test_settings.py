from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hello_api.settings import ApiSettings
from hello_consumer.settings import ConsumerSettings
from hello_core.errors import ConfigError
from hello_core.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("HELLO_API_", "HELLO_CONSUMER_")):
            monkeypatch.delenv(name)
    yield


def test_defaults_work_on_a_laptop() -> None:
    api = load_settings(ApiSettings)
    assert api.listen_address == "127.0.0.1:50051"
    assert api.topic == "default-topic"
    assert api.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert api.kafka.client_id == "hello-api"
    consumer = load_settings(ConsumerSettings)
    assert (consumer.input_topic, consumer.output_topic, consumer.dead_letter_topic) == (
        "default-topic",
        "greetings",
        "default-topic.dlt",
    )
    assert consumer.group_id == "hello-consumer"


def test_nested_kafka_settings_come_from_double_underscore_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELLO_API_KAFKA__BOOTSTRAP_SERVERS", " a:1 , b:2 ")
    monkeypatch.setenv("HELLO_API_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("HELLO_API_LOG__FORMAT", "json")
    settings = load_settings(ApiSettings)
    assert settings.kafka.bootstrap_servers == "a:1,b:2"
    assert settings.log.format == "json"
    assert "s3cret" not in repr(settings)


def test_errors_name_each_bad_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_API_HTTP_PORT", "70000")
    monkeypatch.setenv("HELLO_API_KAFKA__BOOTSTRAP_SERVERS", "no-port-here")
    monkeypatch.setenv("HELLO_API_LOG__LEVEL", "LOUD")
    with pytest.raises(ConfigError) as info:
        load_settings(ApiSettings)
    message = str(info.value)
    assert (
        "HELLO_API_HTTP_PORT: Input should be less than or equal to 65535 (got '70000')" in message
    )
    assert (
        "HELLO_API_KAFKA__BOOTSTRAP_SERVERS: Value error, 'no-port-here' is not host:port"
        in message
    )
    assert "HELLO_API_LOG__LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'" in message


def test_consumer_refuses_the_same_topic_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_CONSUMER_OUTPUT_TOPIC", "default-topic")
    with pytest.raises(ConfigError, match="three different topics"):
        load_settings(ConsumerSettings)


def test_transactional_id_defaults_to_group_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "pod-7")
    assert load_settings(ConsumerSettings).effective_transactional_id() == "hello-consumer-pod-7"
    monkeypatch.setenv("HELLO_CONSUMER_TRANSACTIONAL_ID", "fixed")
    assert load_settings(ConsumerSettings).effective_transactional_id() == "fixed"
