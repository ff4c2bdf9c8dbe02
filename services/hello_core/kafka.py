"""librdkafka configuration built from our settings.

Keys are librdkafka's own (https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md).
This module builds dicts only; the services create the clients, and
``invalid_config`` translates librdkafka's refusal of one into ConfigError.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from hello_core.errors import ConfigError
from hello_core.settings import KafkaSettings

logger = logging.getLogger(__name__)

# librdkafka logs through this logger when passed as the client's `logger`.
librdkafka_logger = logging.getLogger("librdkafka")


def common_config(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security settings shared by every client."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.security_protocol,
        "client.id": settings.client_id or "hello-platform",
        "logger": librdkafka_logger,
    }
    if settings.sasl_mechanism:
        config["sasl.mechanism"] = settings.sasl_mechanism
    if settings.sasl_username:
        config["sasl.username"] = settings.sasl_username
    if settings.sasl_password:
        config["sasl.password"] = settings.sasl_password.get_secret_value()
    if settings.ssl_ca_location:
        config["ssl.ca.location"] = settings.ssl_ca_location
    config.update(settings.extra)
    return config


def producer_config(
    settings: KafkaSettings,
    *,
    linger_ms: int = 5,
    delivery_timeout_ms: int = 30_000,
    transactional_id: str | None = None,
) -> dict[str, Any]:
    """A producer that never loses or reorders an acknowledged message.

    acks=all with idempotence: the broker acknowledges only once every in-sync
    replica has the record, and retries cannot duplicate it.
    """
    config = common_config(settings)
    config.update(
        {
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "message.timeout.ms": delivery_timeout_ms,
        }
    )
    if transactional_id:
        config["transactional.id"] = transactional_id
    return config


def consumer_config(
    settings: KafkaSettings,
    *,
    group_id: str,
    auto_offset_reset: str = "earliest",
    read_committed: bool = True,
) -> dict[str, Any]:
    """A consumer whose offsets move only when we say so."""
    config = common_config(settings)
    config.update(
        {
            "group.id": group_id,
            "auto.offset.reset": auto_offset_reset,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )
    return config


def admin_config(settings: KafkaSettings) -> dict[str, Any]:
    return common_config(settings)


def invalid_config(exc: BaseException, *, env_prefix: str) -> ConfigError | None:
    """The ConfigError for a client librdkafka refused to create, or None for other errors.

    librdkafka checks property names and ranges only when a client is
    created, and reports a bad one as KafkaException(_INVALID_ARG).
    """
    if not isinstance(exc, KafkaException) or not exc.args:
        return None
    error = exc.args[0]
    if not isinstance(error, KafkaError) or error.code() != KafkaError._INVALID_ARG:
        return None
    return ConfigError(
        f"invalid Kafka client configuration: {error.str().strip()} "
        f"(check {env_prefix}KAFKA__EXTRA and related settings)"
    )
