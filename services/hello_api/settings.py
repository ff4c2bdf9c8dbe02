"""API settings; environment prefix ``HELLO_API_``, nested delimiter ``__``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hello_core.settings import (
    ENV_NESTED_DELIMITER,
    KafkaSettings,
    LoggingSettings,
    TelemetrySettings,
)


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HELLO_API_", env_nested_delimiter=ENV_NESTED_DELIMITER, extra="ignore"
    )

    listen_address: str = Field(
        "127.0.0.1:50051", description="host:port for gRPC; 0.0.0.0:50051 in containers."
    )
    topic: str = Field("default-topic", min_length=1, description="Where requests are published.")
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
        description="How long the producer keeps retrying one message before the call "
        "fails with UNAVAILABLE.",
    )
    linger_ms: int = Field(
        2, ge=0, le=1000, description="Producer batching delay; adds at most this to latency."
    )
    max_queue_messages: int = Field(
        100_000,
        ge=1,
        description="Local producer queue size; a full queue answers RESOURCE_EXHAUSTED.",
    )
    max_concurrent_calls: int = Field(
        10_000, ge=1, description="Calls beyond this wait for gRPC to accept them."
    )
    kafka: KafkaSettings = Field(default_factory=lambda: KafkaSettings(client_id="hello-api"))
    log: LoggingSettings = Field(default_factory=LoggingSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
