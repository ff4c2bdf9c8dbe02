"""Pure builders of the objects a HelloPipeline owns.

Every builder returns a plain dict ready for server-side apply: the
consumer Deployment (without ``spec.replicas``, which the scale loop owns
under its own field manager), its ServiceAccount, a metrics Service, a
PodDisruptionBudget and, when the pipeline manages its topic, a Strimzi
``KafkaTopic``. All carry a controller owner reference to the pipeline, so
Kubernetes' garbage collector deletes them with it; nothing outside
Kubernetes needs cleaning up, so the pipeline gets no finalizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hello_operator.spec import GROUP, KIND, VERSION, PipelineSpec

PIPELINE_LABEL = f"{GROUP}/pipeline"
MANAGED_BY = "hello-operator"
STRIMZI_VERSION = "kafka.strimzi.io/v1beta2"


@dataclass(frozen=True)
class Owner:
    """The pipeline as its children need it: identity and coordinates."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Owner:
        meta = body["metadata"]
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            # Foreground deletion of the pipeline waits for its children. Setting
            # this needs `update` on hellopipelines/finalizers wherever the
            # OwnerReferencesPermissionEnforcement admission plugin is on.
            "blockOwnerDeletion": True,
        }


def consumer_name(pipeline: str) -> str:
    return f"{pipeline}-consumer"


def selector_labels(pipeline: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "hello-consumer",
        "app.kubernetes.io/instance": pipeline,
    }


def labels(pipeline: str) -> dict[str, str]:
    return {
        **selector_labels(pipeline),
        "app.kubernetes.io/component": "consumer",
        "app.kubernetes.io/part-of": "hello-platform",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        PIPELINE_LABEL: pipeline,
    }


def selector(pipeline: str) -> str:
    """The label selector of the consumer pods, as the scale subresource reports it."""
    return ",".join(f"{k}={v}" for k, v in selector_labels(pipeline).items())


def _metadata(owner: Owner, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner.name),
        "ownerReferences": [owner.reference()],
    }


# The consumer settings the operator derives from the spec (and, for the
# brokers, from its own settings: consumers must read the cluster whose lag
# the operator reads). The CRD refuses these names in spec.consumer.env;
# tests/unit/operator/test_crd.py checks that its list equals this one.
OPERATOR_ENV = (
    "HELLO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS",
    "HELLO_CONSUMER_INPUT_TOPIC",
    "HELLO_CONSUMER_OUTPUT_TOPIC",
    "HELLO_CONSUMER_DEAD_LETTER_TOPIC",
    "HELLO_CONSUMER_GROUP_ID",
    "HELLO_CONSUMER_AUTO_OFFSET_RESET",
    "HELLO_CONSUMER_HTTP_PORT",
    "HELLO_CONSUMER_LOG__FORMAT",
)


def consumer_env(
    owner: Owner, spec: PipelineSpec, *, bootstrap_servers: str
) -> list[dict[str, Any]]:
    """The container env: the operator's ``HELLO_CONSUMER_*`` settings, then ``spec.consumer.env``.

    The CRD refuses user entries named like the operator's (compared in upper
    case, as the consumer's settings read names case-insensitively); should one
    get through anyway (a CRD edited by hand), it is dropped here, so the
    operator's value always wins.
    """
    values = {
        "HELLO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS": bootstrap_servers,
        "HELLO_CONSUMER_INPUT_TOPIC": spec.topic,
        "HELLO_CONSUMER_OUTPUT_TOPIC": spec.output_topic,
        "HELLO_CONSUMER_DEAD_LETTER_TOPIC": spec.dead_letter_topic,
        "HELLO_CONSUMER_GROUP_ID": spec.consumer_group,
        "HELLO_CONSUMER_AUTO_OFFSET_RESET": spec.offset_reset_policy,
        "HELLO_CONSUMER_HTTP_PORT": str(spec.consumer.http_port),
        "HELLO_CONSUMER_LOG__FORMAT": spec.consumer.log_format,
    }
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in values.items()]
    env += [
        item.model_dump(by_alias=True, exclude_none=True)
        for item in spec.consumer.env
        if item.name.upper() not in OPERATOR_ENV
    ]
    return env


def consumer_env_from(spec: PipelineSpec) -> list[dict[str, Any]]:
    """``spec.consumer.envFrom`` as a container envFrom list; ``env`` wins over it."""
    return [item.model_dump(by_alias=True, exclude_none=True) for item in spec.consumer.env_from]


def deployment(
    owner: Owner,
    spec: PipelineSpec,
    *,
    image: str,
    bootstrap_servers: str,
    replicas: int | None = None,
) -> dict[str, Any]:
    """The consumer Deployment; ``replicas`` only for the first create."""
    name = consumer_name(owner.name)
    port = spec.consumer.http_port
    probe = {"httpGet": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2}
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, name),
        "spec": {
            "selector": {"matchLabels": selector_labels(owner.name)},
            "revisionHistoryLimit": 3,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": labels(owner.name)},
                "spec": {
                    "serviceAccountName": name,
                    # The consumer never calls the Kubernetes API.
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "consumer",
                            "image": image,
                            "imagePullPolicy": spec.consumer.image_pull_policy,
                            "command": ["hello-consumer"],
                            "env": consumer_env(owner, spec, bootstrap_servers=bootstrap_servers),
                            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
                            "livenessProbe": _with_path(probe, "/livez"),
                            "readinessProbe": _with_path(probe, "/readyz"),
                            "resources": spec.consumer.resources,
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir
                        }
                    ],
                    # The root filesystem is read-only; Python and librdkafka
                    # may still want a scratch directory.
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }
    env_from = consumer_env_from(spec)
    if env_from:
        body["spec"]["template"]["spec"]["containers"][0]["envFrom"] = env_from
    if replicas is not None:
        body["spec"]["replicas"] = replicas
    return body


def _with_path(probe: dict[str, Any], path: str) -> dict[str, Any]:
    return {**probe, "httpGet": {**probe["httpGet"], "path": path}}


def service_account(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(owner, consumer_name(owner.name)),
        "automountServiceAccountToken": False,
    }


def metrics_service(owner: Owner, spec: PipelineSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, consumer_name(owner.name)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(owner.name),
            "ports": [
                {
                    "name": "metrics",
                    "port": spec.consumer.http_port,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }


def pod_disruption_budget(owner: Owner) -> dict[str, Any]:
    # maxUnavailable rather than minAvailable: a pipeline scaled to zero must
    # not block node drains, and one consumer at a time is a small rebalance.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(owner, consumer_name(owner.name)),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(owner.name)},
        },
    }


def kafka_topic(owner: Owner, spec: PipelineSpec) -> dict[str, Any]:
    """A Strimzi KafkaTopic for ``spec.topic`` (only when ``manageTopic.enabled``)."""
    metadata = _metadata(owner, _topic_object_name(spec.topic))
    metadata["labels"] = {
        **metadata["labels"],
        "strimzi.io/cluster": spec.manage_topic.strimzi_cluster or "",
    }
    return {
        "apiVersion": STRIMZI_VERSION,
        "kind": "KafkaTopic",
        "metadata": metadata,
        "spec": {
            "topicName": spec.topic,
            "partitions": spec.partitions,
            "replicas": spec.manage_topic.replicas,
            "config": dict(spec.manage_topic.config),
        },
    }


def _topic_object_name(topic: str) -> str:
    # Kafka topic names allow '_' and upper case; Kubernetes names do not.
    # spec.topicName keeps the real name, so this only has to be a valid name.
    name = "".join(c if c.isalnum() or c in ".-" else "-" for c in topic.lower()).strip(".-")
    return name[:253] or "topic"


def owned_objects(
    owner: Owner, spec: PipelineSpec, *, image: str, bootstrap_servers: str
) -> list[dict[str, Any]]:
    """Everything applied on reconcile, in apply order (the Deployment last)."""
    objects = [service_account(owner), metrics_service(owner, spec), pod_disruption_budget(owner)]
    if spec.manage_topic.enabled:
        objects.insert(0, kafka_topic(owner, spec))
    objects.append(deployment(owner, spec, image=image, bootstrap_servers=bootstrap_servers))
    return objects
