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


def test_consumer_refuses_the_same_topic_twice_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELLO_CONSUMER_OUTPUT_TOPIC", "default-topic")
    with pytest.raises(ConfigError) as info:
        load_settings(ConsumerSettings)
    assert str(info.value) == (
        "invalid settings: HELLO_CONSUMER_INPUT_TOPIC, HELLO_CONSUMER_OUTPUT_TOPIC and "
        "HELLO_CONSUMER_DEAD_LETTER_TOPIC must be three different topics "
        "(got 'default-topic', 'default-topic', 'default-topic.dlt')"
    )


def test_transactional_id_defaults_to_group_host_and_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "pod-7")
    monkeypatch.setattr("os.getpid", lambda: 1)
    assert load_settings(ConsumerSettings).effective_transactional_id() == "hello-consumer-pod-7-1"
    monkeypatch.setenv("HELLO_CONSUMER_TRANSACTIONAL_ID", "fixed")
    assert load_settings(ConsumerSettings).effective_transactional_id() == "fixed"


def test_two_processes_on_one_host_get_different_transactional_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(ConsumerSettings)
    monkeypatch.setattr("os.getpid", lambda: 100)
    first = settings.effective_transactional_id()
    monkeypatch.setattr("os.getpid", lambda: 101)
    assert settings.effective_transactional_id() != first


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("garbage", "Value error, 'garbage' is not host:port (got 'garbage')"),
        (
            "127.0.0.1:99999",
            "Value error, port 99999 of '127.0.0.1:99999' is outside 1..65535 "
            "(got '127.0.0.1:99999')",
        ),
        (
            "127.0.0.1:0",
            "Value error, port 0 of '127.0.0.1:0' is outside 1..65535 (got '127.0.0.1:0')",
        ),
        (":50051", "Value error, ':50051' is not host:port (got ':50051')"),
        ("host:http", "Value error, 'host:http' is not host:port (got 'host:http')"),
    ],
)
def test_listen_address_must_be_host_and_a_port_from_1_to_65535(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("HELLO_API_LISTEN_ADDRESS", value)
    with pytest.raises(ConfigError) as info:
        load_settings(ApiSettings)
    assert str(info.value) == f"invalid settings: HELLO_API_LISTEN_ADDRESS: {message}"


@pytest.mark.parametrize("value", ["0.0.0.0:50051", "[::]:50051", "localhost:1"])
def test_listen_address_accepts_ipv4_ipv6_and_names(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HELLO_API_LISTEN_ADDRESS", value)
    assert load_settings(ApiSettings).listen_address == value


@pytest.mark.parametrize("variable", ["HELLO_API_KAFKA", "HELLO_API_KAFKA__EXTRA"])
def test_text_that_is_not_json_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("HELLO_API_KAFKA__BOOTSTRAP_SERVERS", "k:9092")  # a string: not JSON
    monkeypatch.setenv(variable, "{bad")
    with pytest.raises(ConfigError) as info:
        load_settings(ApiSettings)
    assert str(info.value) == (
        f"invalid settings: {variable}: not valid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "HELLO_API_DELIVERY_TIMEOUT_MS",
            "999999999999",
            "Input should be less than or equal to 900000",
        ),
        (
            "HELLO_API_MAX_QUEUE_MESSAGES",
            "10000001",
            "Input should be less than or equal to 10000000",
        ),
    ],
)
def test_api_values_librdkafka_cannot_hold_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(ApiSettings)
    assert str(info.value) == f"invalid settings: {variable}: {message} (got {value!r})"


def test_api_upper_bounds_themselves_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_API_DELIVERY_TIMEOUT_MS", "900000")
    monkeypatch.setenv("HELLO_API_MAX_QUEUE_MESSAGES", "10000000")
    settings = load_settings(ApiSettings)
    assert (settings.delivery_timeout_ms, settings.max_queue_messages) == (900_000, 10_000_000)


@pytest.mark.parametrize("level", ["debug", "Warning", "ERROR"])
def test_log_level_is_accepted_in_any_case(monkeypatch: pytest.MonkeyPatch, level: str) -> None:
    monkeypatch.setenv("HELLO_API_LOG__LEVEL", level)
    assert load_settings(ApiSettings).log.level == level.upper()


def test_probe_endpoints_listen_on_loopback_by_default() -> None:
    assert load_settings(ApiSettings).http_host == "127.0.0.1"
    assert load_settings(ConsumerSettings).http_host == "127.0.0.1"


def test_client_id_names_the_service_even_when_kafka_variables_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELLO_API_KAFKA__BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("HELLO_CONSUMER_KAFKA__SECURITY_PROTOCOL", "SSL")
    assert load_settings(ApiSettings).kafka.client_id == "hello-api"
    assert load_settings(ConsumerSettings).kafka.client_id == "hello-consumer"
    monkeypatch.setenv("HELLO_API_KAFKA__CLIENT_ID", "edge-api-7")
    assert load_settings(ApiSettings).kafka.client_id == "edge-api-7"


def test_extra_kafka_properties_cannot_redirect_or_weaken_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELLO_CONSUMER_KAFKA__EXTRA__BOOTSTRAP.SERVERS", "elsewhere:9092")
    with pytest.raises(ConfigError) as info:
        load_settings(ConsumerSettings)
    assert "HELLO_CONSUMER_KAFKA__EXTRA: Value error, bootstrap.servers cannot be set" in str(
        info.value
    )
    monkeypatch.delenv("HELLO_CONSUMER_KAFKA__EXTRA__BOOTSTRAP.SERVERS")
    monkeypatch.setenv("HELLO_API_KAFKA__EXTRA", '{"Acks": "1", "linger.ms": 5}')
    with pytest.raises(ConfigError, match="acks cannot be set through extra"):
        load_settings(ApiSettings)
    monkeypatch.setenv("HELLO_API_KAFKA__EXTRA", '{"socket.keepalive.enable": true}')
    assert load_settings(ApiSettings).kafka.extra == {"socket.keepalive.enable": True}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HELLO_API_TOPIC", "bad topic!"),
        ("HELLO_API_TOPIC", ".."),
        ("HELLO_API_TOPIC", "t" * 250),
        ("HELLO_CONSUMER_INPUT_TOPIC", "in/put"),
        ("HELLO_CONSUMER_OUTPUT_TOPIC", "grüße"),
        ("HELLO_CONSUMER_DEAD_LETTER_TOPIC", "dead letters"),
    ],
)
def test_a_topic_name_kafka_would_refuse_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    settings_cls = ApiSettings if variable.startswith("HELLO_API_") else ConsumerSettings
    with pytest.raises(ConfigError) as info:
        load_settings(settings_cls)
    message = str(info.value)
    assert message.startswith(f"invalid settings: {variable}: ")
    assert repr(value) in message
    if value != "..":
        assert "1 to 249 of the characters a-z A-Z 0-9 . _ -" in message


@pytest.mark.parametrize("value", ["t" * 249, "orders.v2_EU-1", "_internal"])
def test_topic_names_kafka_accepts_pass(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HELLO_API_TOPIC", value)
    assert load_settings(ApiSettings).topic == value
