"""Settings base shared by every service.

Each service defines one ``BaseSettings`` subclass with its own env prefix
(``HELLO_API_``, ``HELLO_CONSUMER_``, ``HELLO_OPERATOR_``); nested groups use
``__`` as delimiter, e.g. ``HELLO_API_KAFKA__BOOTSTRAP_SERVERS``.
``load_settings`` turns pydantic's errors, and pydantic-settings' errors
for values that are not JSON where JSON is expected, into one
``ConfigError`` whose message names each offending environment variable.
"""

from __future__ import annotations

import json
import os
import re
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from pydantic import AfterValidator, BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsError

from hello_core.errors import ConfigError

ENV_NESTED_DELIMITER = "__"

LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class LoggingSettings(BaseModel):
    level: LogLevel = Field("INFO", description="Root log level; any letter case.")
    format: LogFormat = Field(
        "text", description="text: key=value lines for people; json: one object per line."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


def check_host_port(value: str) -> str:
    """``value`` if it is ``host:port`` (``[v6]:port`` too) with port 1..65535, else ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{value!r} is not host:port")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} of {value!r} is outside 1..65535")
    return value


# Kafka's own rule for topic names (org.apache.kafka.common.internals.Topic).
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def check_topic_name(value: str) -> str:
    """``value`` if Kafka accepts it as a topic name, else ValueError saying why."""
    if value in (".", ".."):
        raise ValueError(f"{value!r} is not a valid Kafka topic name")
    if not _TOPIC_NAME.fullmatch(value):
        raise ValueError("a Kafka topic name is 1 to 249 of the characters a-z A-Z 0-9 . _ -")
    return value


TopicName = Annotated[str, AfterValidator(check_topic_name)]


# librdkafka properties that KafkaSettings or the services set themselves.
RESERVED_KAFKA_PROPERTIES = frozenset(
    {
        "bootstrap.servers",
        "metadata.broker.list",
        "security.protocol",
        "sasl.mechanism",
        "sasl.mechanisms",
        "sasl.username",
        "sasl.password",
        "ssl.ca.location",
        "client.id",
        "group.id",
        "group.instance.id",
        "transactional.id",
        "enable.idempotence",
        "acks",
        "request.required.acks",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "isolation.level",
    }
)


class KafkaSettings(BaseModel):
    """Connection settings common to every Kafka client we create.

    Anything librdkafka accepts can be passed through ``extra`` with its own
    dotted key (see librdkafka's CONFIGURATION.md); we never rename its keys.
    """

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of brokers."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = Field(None, description="e.g. SCRAM-SHA-512 for Strimzi.")
    sasl_username: str | None = None
    sasl_password: pydantic.SecretStr | None = None
    ssl_ca_location: str | None = Field(None, description="PEM file of the broker CA.")
    client_id: str | None = Field(
        None, description="Shown in broker logs and quotas; defaults to the service's name."
    )
    extra: dict[str, str | int | bool] = Field(
        default_factory=dict, description="More librdkafka properties, by their own names."
    )

    @field_validator("extra")
    @classmethod
    def _extra_adds_only(cls, value: dict[str, str | int | bool]) -> dict[str, str | int | bool]:
        # `extra` adds properties; it must not change where clients connect, who
        # they are, or the delivery guarantees the services rely on.
        reserved = sorted(RESERVED_KAFKA_PROPERTIES & {key.lower() for key in value})
        if reserved:
            raise ValueError(
                f"{', '.join(reserved)} cannot be set through extra: use the dedicated "
                "setting (e.g. KAFKA__BOOTSTRAP_SERVERS), or it is fixed by the service"
            )
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _hosts_have_ports(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        if not hosts:
            raise ValueError("must list at least one host:port")
        for host in hosts:
            name, sep, port = host.rpartition(":")
            if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{host!r} is not host:port")
        return ",".join(hosts)


class TelemetrySettings(BaseModel):
    """Tracing set-up. The standard OTEL_* variables are honoured as well."""

    traces_exporter: Literal["none", "console", "otlp"] = Field(
        "none", description="otlp needs the opentelemetry-exporter-otlp package."
    )
    service_name: str | None = Field(None, description="Defaults to the service's own name.")


S = TypeVar("S", bound=BaseSettings)


def env_name(settings_cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    """The environment variable that sets the field at ``loc``."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return (prefix + ENV_NESTED_DELIMITER.join(parts)).upper()


def load_settings(settings_cls: type[S]) -> S:
    """Build ``settings_cls`` from the environment, or raise ConfigError naming the variables."""
    try:
        return settings_cls()
    except pydantic.ValidationError as exc:
        problems = [_describe(settings_cls, err) for err in exc.errors()]
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
    except SettingsError as exc:
        raise ConfigError("invalid settings: " + _describe_unparsable(settings_cls, exc)) from exc


def _describe(settings_cls: type[BaseSettings], err: Any) -> str:
    loc = tuple(err["loc"])
    if not loc:
        # A model validator's error belongs to no single field; its message
        # names the variables itself.
        cause = err.get("ctx", {}).get("error")
        return str(cause) if cause is not None else str(err["msg"])
    name = env_name(settings_cls, loc)
    if isinstance(err["input"], dict):
        return f"{name}: {err['msg']}"
    return f"{name}: {err['msg']} (got {err['input']!r})"


def _describe_unparsable(settings_cls: type[BaseSettings], exc: SettingsError) -> str:
    """Name the variable holding text that is not JSON where a group or dict belongs.

    pydantic-settings names only the top-level field ("kafka"), whether the
    bad text was in HELLO_API_KAFKA or HELLO_API_KAFKA__EXTRA; we look for it.
    """
    match = re.search(r'field "([^"]+)"', str(exc))
    if match is None:
        return str(exc)
    base = env_name(settings_cls, (match.group(1),))
    reason = f"not valid JSON: {exc.__cause__}" if exc.__cause__ else str(exc)
    for key in sorted(os.environ):
        name = key.upper()
        if name != base and not name.startswith(base + ENV_NESTED_DELIMITER):
            continue
        text = os.environ[key].strip()
        if name != base and not text.startswith(("{", "[")):
            continue  # a plain string field, not parsed as JSON
        try:
            json.loads(text)
        except ValueError:
            return f"{name}: {reason}"
    return f"{base} or {base}{ENV_NESTED_DELIMITER}*: {reason}"


def with_client_id(kafka: KafkaSettings, default: str) -> KafkaSettings:
    """``kafka`` with ``client_id`` set to ``default`` unless the user chose one.

    Services call this from a validator: a field default alone is lost as
    soon as any nested KAFKA__* variable is set, because pydantic then builds
    KafkaSettings from the environment instead of the default factory.
    """
    if kafka.client_id is None:
        return kafka.model_copy(update={"client_id": default})
    return kafka
