"""API settings; environment prefix ``HELLO_API_``, nested delimiter ``__``."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hello_core.settings import (
    ENV_NESTED_DELIMITER,
    KafkaSettings,
    LoggingSettings,
    TelemetrySettings,
    TopicName,
    check_host_port,
    with_client_id,
)

ENV_PREFIX = "HELLO_API_"

# librdkafka's message.timeout.ms caps at 2147483647 ms; no call should
# wait anywhere near that, so the bound is 15 minutes.
MAX_DELIVERY_TIMEOUT_MS = 900_000
# librdkafka allows 2147483647 queued messages; ten million ~1 KiB requests
# is already ~10 GiB of memory, far beyond any pod's limit.
MAX_QUEUE_MESSAGES = 10_000_000


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="ignore"
    )

    listen_address: str = Field(
        "127.0.0.1:50051",
        description="host:port for gRPC, port 1..65535 (0 is refused: no client could find "
        "a random port); 0.0.0.0:50051 in containers.",
    )
    topic: TopicName = Field(
        "default-topic", description="Where requests are published; the topic must exist."
    )
    http_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Interface of /metrics, /livez and /readyz; 0.0.0.0 in containers so "
        "the kubelet and Prometheus reach it.",
    )
    http_port: int = Field(
        9101, ge=0, le=65535, description="Serves /metrics, /livez and /readyz; 0 disables."
    )
    shutdown_grace_seconds: float = Field(
        20.0,
        gt=0,
        description="Time in-flight calls get after SIGTERM; keep it below the pod's "
        "terminationGracePeriodSeconds so the producer flush fits too.",
    )
    delivery_timeout_ms: int = Field(
        10_000,
        ge=100,
        le=MAX_DELIVERY_TIMEOUT_MS,
        description="How long, in ms, the producer keeps retrying one message before the "
        "call fails with UNAVAILABLE; at most 15 minutes.",
    )
    ack_stall_seconds: float = Field(
        5.0,
        gt=0,
        le=MAX_DELIVERY_TIMEOUT_MS / 1000,
        description="/readyz fails while the oldest message Kafka has not answered yet has "
        "waited longer than this, in seconds: a broker that stops responding but keeps its "
        "connections open. Keep it below delivery_timeout_ms, or messages time out first.",
    )
    linger_ms: int = Field(
        2, ge=0, le=1000, description="Producer batching delay; adds at most this to latency."
    )
    max_queue_messages: int = Field(
        100_000,
        ge=1,
        le=MAX_QUEUE_MESSAGES,
        description="Local producer queue size, in messages, at most 10 million; a full "
        "queue answers RESOURCE_EXHAUSTED.",
    )
    max_concurrent_calls: int = Field(
        10_000, ge=1, description="Calls beyond this wait for gRPC to accept them."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LoggingSettings = Field(default_factory=LoggingSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @model_validator(mode="after")
    def _stall_shorter_than_delivery(self) -> ApiSettings:
        # Readiness must notice a stall before the calls that hit it time out.
        if self.ack_stall_seconds * 1000 >= self.delivery_timeout_ms:
            raise ValueError(
                f"{ENV_PREFIX}ACK_STALL_SECONDS ({self.ack_stall_seconds:g}) must be shorter "
                f"than {ENV_PREFIX}DELIVERY_TIMEOUT_MS ({self.delivery_timeout_ms} ms)"
            )
        return self

    @field_validator("listen_address")
    @classmethod
    def _listen_address_is_host_port(cls, value: str) -> str:
        return check_host_port(value)

    @field_validator("kafka", mode="after")
    @classmethod
    def _name_the_client(cls, kafka: KafkaSettings) -> KafkaSettings:
        return with_client_id(kafka, "hello-api")
