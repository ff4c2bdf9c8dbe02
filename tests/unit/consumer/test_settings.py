"""Consumer settings: bounds that librdkafka or the broker would refuse later."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hello_consumer.loop import transactional_producer_config
from hello_consumer.settings import ConsumerSettings
from hello_core.errors import ConfigError
from hello_core.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("HELLO_CONSUMER_"):
            monkeypatch.delenv(name)
    yield


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "HELLO_CONSUMER_TRANSACTION_TIMEOUT_MS",
            "900001",
            "Input should be less than or equal to 900000",
        ),
        (
            "HELLO_CONSUMER_SESSION_TIMEOUT_MS",
            "1800001",
            "Input should be less than or equal to 1800000",
        ),
        ("HELLO_CONSUMER_HTTP_HOST", "", "String should have at least 1 character"),
    ],
)
def test_values_the_broker_would_refuse_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(ConsumerSettings)
    assert str(info.value) == f"invalid settings: {variable}: {message} (got {value!r})"


def test_transaction_timeout_of_15_minutes_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_CONSUMER_TRANSACTION_TIMEOUT_MS", "900000")
    assert load_settings(ConsumerSettings).transaction_timeout_ms == 900_000


def test_lower_case_log_level_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_CONSUMER_LOG__LEVEL", "debug")
    assert load_settings(ConsumerSettings).log.level == "DEBUG"


def test_http_host_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_CONSUMER_HTTP_HOST", "0.0.0.0")
    assert load_settings(ConsumerSettings).http_host == "0.0.0.0"


def test_max_poll_interval_below_the_session_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELLO_CONSUMER_SESSION_TIMEOUT_MS", "20000")
    monkeypatch.setenv("HELLO_CONSUMER_MAX_POLL_INTERVAL_MS", "15000")
    with pytest.raises(ConfigError) as info:
        load_settings(ConsumerSettings)
    assert (
        "HELLO_CONSUMER_MAX_POLL_INTERVAL_MS (15000) must be at least "
        "HELLO_CONSUMER_SESSION_TIMEOUT_MS (20000)"
    ) in str(info.value)


def test_max_poll_interval_defaults_well_below_librdkafkas_five_minutes() -> None:
    # It bounds how long a rebalance waits for members lost in a broker restart.
    assert load_settings(ConsumerSettings).max_poll_interval_ms == 30_000


def test_a_first_backoff_above_its_maximum_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_CONSUMER_RETRY_BACKOFF_SECONDS", "5")
    monkeypatch.setenv("HELLO_CONSUMER_RETRY_BACKOFF_MAX_SECONDS", "1")
    with pytest.raises(ConfigError) as info:
        load_settings(ConsumerSettings)
    assert str(info.value) == (
        "invalid settings: HELLO_CONSUMER_RETRY_BACKOFF_SECONDS (5) must not exceed "
        "HELLO_CONSUMER_RETRY_BACKOFF_MAX_SECONDS (1)"
    )


def test_the_transactional_producer_retries_concurrent_transactions_quickly() -> None:
    config = transactional_producer_config(load_settings(ConsumerSettings), "txn-1")
    assert config["retry.backoff.ms"] == 10
    assert config["transactional.id"] == "txn-1"
    assert config["transaction.timeout.ms"] == 10_000
    assert config["message.timeout.ms"] == 10_000  # librdkafka: at most the txn timeout


def test_kafka_extra_may_choose_another_retry_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_CONSUMER_KAFKA__EXTRA", '{"retry.backoff.ms": 50}')
    config = transactional_producer_config(load_settings(ConsumerSettings), "txn-1")
    assert config["retry.backoff.ms"] == 50
