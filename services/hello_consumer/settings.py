"""Consumer settings; environment prefix ``HELLO_CONSUMER_``, nested delimiter ``__``."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hello_core.settings import (
    ENV_NESTED_DELIMITER,
    KafkaSettings,
    LoggingSettings,
    TelemetrySettings,
    TopicName,
    with_client_id,
)

ENV_PREFIX = "HELLO_CONSUMER_"


class ConsumerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="ignore"
    )

    input_topic: TopicName = Field("default-topic", description="Where requests are read.")
    output_topic: TopicName = Field("greetings", description="Where greetings are written.")
    dead_letter_topic: TopicName = Field(
        "default-topic.dlt", description="Where records that cannot be processed go."
    )
    group_id: str = Field("hello-consumer", min_length=1, description="Kafka consumer group.")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a group with no committed offset starts."
    )
    transactional_id: str | None = Field(
        None,
        description="Producer transactional.id; defaults to <group_id>-<hostname>-<pid>: "
        "unique per process on one host, and stable across restarts of a container "
        "(whose pid is 1), so a restarted instance fences its own zombie.",
    )
    http_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Interface of /metrics, /livez and /readyz; 0.0.0.0 in containers so "
        "the kubelet and Prometheus reach it.",
    )
    http_port: int = Field(9102, ge=0, le=65535, description="/metrics, /livez, /readyz; 0 off.")
    shutdown_grace_seconds: float = Field(
        20.0, gt=0, description="Time to finish the current batch and leave the group."
    )
    batch_max_messages: int = Field(
        500, ge=1, le=100_000, description="Most records written in one transaction."
    )
    poll_timeout_seconds: float = Field(
        0.5, gt=0, le=10, description="Longest wait for the first record of a batch."
    )
    max_attempts: int = Field(
        3,
        ge=1,
        le=100,
        description="Tries of a retryable processing failure before dead-lettering.",
    )
    retry_backoff_seconds: float = Field(0.1, ge=0, description="First retry delay; doubles.")
    retry_backoff_max_seconds: float = Field(
        2.0, ge=0, description="Longest retry delay; at least the first one."
    )
    transaction_timeout_ms: int = Field(
        10_000,
        ge=1000,
        # The broker refuses longer ones: transaction.max.timeout.ms defaults to 15 min.
        le=900_000,
        description="After a crash, readers of the output topic wait up to this long (ms) "
        "for the broker to abort the dead instance's open transaction; at most 15 minutes, "
        "the broker's default transaction.max.timeout.ms.",
    )
    session_timeout_ms: int = Field(
        10_000,
        ge=1000,
        # The broker's group.max.session.timeout.ms defaults to 30 min.
        le=1_800_000,
        description="How soon the group reassigns a crashed instance's partitions "
        "(librdkafka's session.timeout.ms; its default of 45 s stalls them longer).",
    )
    max_poll_interval_ms: int = Field(
        30_000,
        ge=1000,
        le=86_400_000,
        description="A member that has not polled for this long (ms) leaves the group. "
        "It is also the group's rebalance timeout: after a broker restart the group "
        "waits up to this long for members that will not come back (librdkafka's "
        "default of 300 s stalls the group that long). At least the session timeout.",
    )
    stall_seconds: float = Field(
        60.0,
        gt=0,
        description="/livez fails when the poll loop has not turned for this long; "
        "the consumer also exits when it cannot learn whether a batch landed for this long.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LoggingSettings = Field(default_factory=LoggingSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @model_validator(mode="after")
    def _poll_interval_covers_session(self) -> ConsumerSettings:
        if self.max_poll_interval_ms < self.session_timeout_ms:
            raise ValueError(
                f"{ENV_PREFIX}MAX_POLL_INTERVAL_MS ({self.max_poll_interval_ms}) must be at "
                f"least {ENV_PREFIX}SESSION_TIMEOUT_MS ({self.session_timeout_ms}), "
                "as librdkafka requires"
            )
        return self

    @model_validator(mode="after")
    def _backoff_within_its_maximum(self) -> ConsumerSettings:
        if self.retry_backoff_seconds > self.retry_backoff_max_seconds:
            raise ValueError(
                f"{ENV_PREFIX}RETRY_BACKOFF_SECONDS ({self.retry_backoff_seconds:g}) must not "
                f"exceed {ENV_PREFIX}RETRY_BACKOFF_MAX_SECONDS ({self.retry_backoff_max_seconds:g})"
            )
        return self

    @model_validator(mode="after")
    def _topics_differ(self) -> ConsumerSettings:
        topics = [self.input_topic, self.output_topic, self.dead_letter_topic]
        if len(set(topics)) != len(topics):
            names = [ENV_PREFIX + n for n in ("INPUT_TOPIC", "OUTPUT_TOPIC", "DEAD_LETTER_TOPIC")]
            raise ValueError(
                f"{names[0]}, {names[1]} and {names[2]} must be three different topics "
                f"(got {', '.join(repr(t) for t in topics)})"
            )
        return self

    def effective_transactional_id(self) -> str:
        return self.transactional_id or f"{self.group_id}-{socket.gethostname()}-{os.getpid()}"

    @field_validator("kafka", mode="after")
    @classmethod
    def _name_the_client(cls, kafka: KafkaSettings) -> KafkaSettings:
        return with_client_id(kafka, "hello-consumer")
