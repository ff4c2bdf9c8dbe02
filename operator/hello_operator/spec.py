"""The HelloPipeline resource: API coordinates and a typed view of its spec.

The CRD in ``charts/hello-platform/crds/hellopipelines.yaml`` is the source
of truth for validation and defaults (the API server applies both before
the operator sees an object). The model here mirrors it so the handlers
read typed fields; a unit test checks that both carry the same defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from hello_operator.scaling import ScalingPolicy

GROUP = "hello-platform.dev"
VERSION = "v1alpha1"
PLURAL = "hellopipelines"
KIND = "HelloPipeline"

# Children are named <pipeline>-consumer; Kubernetes names of Services and
# labels stop at 63 characters, so the CRD caps pipeline names at this.
MAX_NAME_LENGTH = 54


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


class KeySelector(_Model):
    """secretKeyRef / configMapKeyRef of a Kubernetes EnvVarSource."""

    name: str
    key: str
    optional: bool | None = None


class EnvVarSource(_Model):
    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None


class EnvVar(_Model):
    """A Kubernetes EnvVar: ``value`` or ``valueFrom`` (a Secret or ConfigMap key)."""

    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class ObjectRef(_Model):
    """secretRef / configMapRef of a Kubernetes EnvFromSource."""

    name: str
    optional: bool | None = None


class EnvFromSource(_Model):
    prefix: str | None = None
    secret_ref: ObjectRef | None = None
    config_map_ref: ObjectRef | None = None


class ConsumerSpec(_Model):
    image: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    resources: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        }
    )
    log_format: Literal["text", "json"] = "json"
    http_port: int = 9102
    # Appended after the operator's own HELLO_CONSUMER_* variables, e.g. the
    # Kafka security settings; the CRD refuses the names the operator sets.
    env: tuple[EnvVar, ...] = ()
    env_from: tuple[EnvFromSource, ...] = ()


class ManagedTopicSpec(_Model):
    enabled: bool = False
    strimzi_cluster: str | None = None
    replicas: int = 3
    config: dict[str, str] = Field(default_factory=dict)


class PipelineSpec(_Model):
    topic: str
    consumer_group: str
    partitions: int = 1
    output_topic: str = "greetings"
    dead_letter_topic: str = "default-topic.dlt"
    offset_reset_policy: Literal["earliest", "latest"] = "earliest"
    consumer: ConsumerSpec = Field(default_factory=ConsumerSpec)
    manage_topic: ManagedTopicSpec = Field(default_factory=ManagedTopicSpec)
    min_replicas: int = 0
    max_replicas: int = 10
    lag_threshold: int = 100
    activation_lag_threshold: int = 0
    polling_interval: int = 30
    scale_down_stabilization_seconds: int = 300
    scale_up_step: int | None = None
    scale_down_step: int | None = None
    allow_idle_consumers: bool = False
    limit_to_partitions_with_lag: bool = False
    exclude_persistent_lag: bool = False
    persistent_lag_grace_seconds: int = 60
    scale_to_zero_on_invalid_offset: bool = False
    paused: bool = False
    replicas: int | None = None

    @classmethod
    def from_body(cls, spec: Mapping[str, Any]) -> PipelineSpec:
        return cls.model_validate(dict(spec))

    def policy(self) -> ScalingPolicy:
        return ScalingPolicy(
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            lag_threshold=self.lag_threshold,
            activation_lag_threshold=self.activation_lag_threshold,
            scale_down_stabilization_seconds=self.scale_down_stabilization_seconds,
            scale_up_step=self.scale_up_step,
            scale_down_step=self.scale_down_step,
            allow_idle_consumers=self.allow_idle_consumers,
            limit_to_partitions_with_lag=self.limit_to_partitions_with_lag,
            exclude_persistent_lag=self.exclude_persistent_lag,
            persistent_lag_grace_seconds=self.persistent_lag_grace_seconds,
            offset_reset_policy=self.offset_reset_policy,
            scale_to_zero_on_invalid_offset=self.scale_to_zero_on_invalid_offset,
        )
