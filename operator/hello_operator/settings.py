"""Settings of hello-operator, from ``HELLO_OPERATOR_*`` environment variables.

Nested groups use ``__``: ``HELLO_OPERATOR_KAFKA__BOOTSTRAP_SERVERS``,
``HELLO_OPERATOR_LOG__FORMAT``. The Kubernetes connection is not configured
here: in a pod the ServiceAccount is used, elsewhere ``KUBECONFIG`` (or
``~/.kube/config``), as kubectl does.

One operator reads lag from one Kafka cluster (``kafka``); every pipeline's
consumers are pointed at ``consumer_bootstrap_servers``, which defaults to
the same servers.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hello_core.settings import (
    ENV_NESTED_DELIMITER,
    KafkaSettings,
    LoggingSettings,
    with_client_id,
)


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HELLO_OPERATOR_",
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="ignore",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    log: LoggingSettings = Field(default_factory=LoggingSettings)
    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces to watch (JSON list); empty watches the whole cluster.",
    )
    peering_name: str = Field(
        "hello-operator",
        description="KopfPeering (namespaced) or ClusterKopfPeering object shared by replicas;"
        " only the highest-priority live replica acts.",
    )
    standalone: bool = Field(False, description="Skip peering; for a single local run only.")
    priority: int | None = Field(
        None,
        description="Peering priority of this replica; the highest live one acts. Random when"
        " unset, because kopf pauses every replica when two share the highest priority.",
    )
    consumer_image: str = Field(
        "hello-platform:latest",
        description="Consumer image for pipelines that do not name one in spec.consumer.image.",
    )
    consumer_bootstrap_servers: str | None = Field(
        None,
        description="Bootstrap servers given to consumers; the operator's own when unset.",
    )
    kafka_timeout_seconds: float = Field(
        5.0, gt=0, description="Deadline of each Kafka admin request in a poll."
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address of the Prometheus endpoint; the chart sets 0.0.0.0 in the pod.",
    )
    metrics_port: int = Field(9103, ge=0, lt=65536, description="0 disables the endpoint.")
    health_port: int = Field(
        8080, ge=0, lt=65536, description="Port of kopf's /healthz liveness endpoint; 0 disables."
    )
    poll_workers: int = Field(
        16, ge=1, description="Threads for lag polls; each blocks on Kafka for up to its timeout."
    )
    field_manager: str = Field(
        "hello-operator", description="Server-side apply field manager of owned objects."
    )

    def consumer_bootstrap(self) -> str:
        return self.consumer_bootstrap_servers or self.kafka.bootstrap_servers

    @field_validator("kafka", mode="after")
    @classmethod
    def _name_the_client(cls, kafka: KafkaSettings) -> KafkaSettings:
        return with_client_id(kafka, "hello-operator")
