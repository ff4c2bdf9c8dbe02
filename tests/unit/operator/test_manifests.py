"""Owned objects built for a pipeline."""

from __future__ import annotations

from kubernetes import client

from hello_consumer.settings import ConsumerSettings
from hello_operator import manifests
from hello_operator.spec import PipelineSpec

OWNER = manifests.Owner(name="orders", namespace="shop", uid="4f1c-uid")
SPEC = PipelineSpec.from_body(
    {
        "topic": "default-topic",
        "consumerGroup": "hello-consumer",
        "outputTopic": "greetings",
        "deadLetterTopic": "greetings-dlq",
        "offsetResetPolicy": "earliest",
        "consumer": {"image": "registry.local/hello:1.2.3", "logFormat": "text", "httpPort": 9200},
    }
)


def build_deployment(**kwargs: object) -> dict:  # type: ignore[type-arg]
    return manifests.deployment(
        OWNER, SPEC, image="registry.local/hello:1.2.3", bootstrap_servers="kafka:9092", **kwargs
    )


def env_of(deployment: dict) -> dict[str, str]:  # type: ignore[type-arg]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def with_consumer(**update: object) -> PipelineSpec:
    return SPEC.model_copy(update={"consumer": SPEC.consumer.model_copy(update=update)})


# What a pipeline on a Strimzi cluster with a SCRAM-SHA-512 listener needs.
SECURED = PipelineSpec.from_body(
    {
        "topic": "default-topic",
        "consumerGroup": "hello-consumer",
        "consumer": {
            "env": [
                {"name": "HELLO_CONSUMER_KAFKA__SECURITY_PROTOCOL", "value": "SASL_SSL"},
                {"name": "HELLO_CONSUMER_KAFKA__SASL_MECHANISM", "value": "SCRAM-SHA-512"},
                {"name": "HELLO_CONSUMER_KAFKA__SASL_USERNAME", "value": "hello-consumer"},
                {
                    "name": "HELLO_CONSUMER_KAFKA__SASL_PASSWORD",
                    "valueFrom": {"secretKeyRef": {"name": "hello-consumer", "key": "password"}},
                },
                {
                    "name": "HELLO_CONSUMER_KAFKA__EXTRA__SSL.CA.PEM",
                    "valueFrom": {
                        "secretKeyRef": {"name": "main-cluster-ca-cert", "key": "ca.crt"}
                    },
                },
                {
                    "name": "HELLO_CONSUMER_LOG__LEVEL",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "tuning", "key": "level", "optional": True}
                    },
                },
            ],
            "envFrom": [
                {"prefix": "HELLO_CONSUMER_", "configMapRef": {"name": "consumer-tuning"}},
                {"secretRef": {"name": "extra", "optional": False}},
            ],
        },
    }
)


def secured_container() -> dict:  # type: ignore[type-arg]
    deployment = manifests.deployment(OWNER, SECURED, image="i", bootstrap_servers="kafka:9093")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def test_deployment_passes_pipeline_settings_to_the_consumer_as_env() -> None:
    assert env_of(build_deployment()) == {
        "HELLO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",
        "HELLO_CONSUMER_INPUT_TOPIC": "default-topic",
        "HELLO_CONSUMER_OUTPUT_TOPIC": "greetings",
        "HELLO_CONSUMER_DEAD_LETTER_TOPIC": "greetings-dlq",
        "HELLO_CONSUMER_GROUP_ID": "hello-consumer",
        "HELLO_CONSUMER_AUTO_OFFSET_RESET": "earliest",
        "HELLO_CONSUMER_HTTP_PORT": "9200",
        "HELLO_CONSUMER_LOG__FORMAT": "text",
    }


def test_deployment_runs_the_consumer_command_with_probes_on_its_http_port() -> None:
    (container,) = build_deployment()["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["hello-consumer"]
    assert container["ports"] == [{"name": "http", "containerPort": 9200, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"port": "http", "path": "/livez"}
    assert container["readinessProbe"]["httpGet"] == {"port": "http", "path": "/readyz"}


def test_deployment_leaves_replicas_to_the_scale_loop_unless_creating() -> None:
    assert "replicas" not in build_deployment()["spec"]
    assert build_deployment(replicas=3)["spec"]["replicas"] == 3


def test_every_owned_object_has_a_controller_reference_to_the_pipeline() -> None:
    objects = manifests.owned_objects(
        OWNER,
        SPEC.model_copy(
            update={
                "manage_topic": SPEC.manage_topic.model_copy(
                    update={"enabled": True, "strimzi_cluster": "main"}
                )
            }
        ),
        image="i",
        bootstrap_servers="k:1",
    )
    assert [o["kind"] for o in objects] == [
        "KafkaTopic",
        "ServiceAccount",
        "Service",
        "PodDisruptionBudget",
        "Deployment",
    ]
    for obj in objects:
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "hello-platform.dev/v1alpha1",
            "kind": "HelloPipeline",
            "name": "orders",
            "uid": "4f1c-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert obj["metadata"]["namespace"] == "shop"


def test_kafka_topic_is_only_managed_when_asked() -> None:
    kinds = [
        o["kind"] for o in manifests.owned_objects(OWNER, SPEC, image="i", bootstrap_servers="k:1")
    ]
    assert "KafkaTopic" not in kinds


def test_kafka_topic_keeps_the_real_topic_name_and_labels_the_strimzi_cluster() -> None:
    spec = SPEC.model_copy(
        update={
            "topic": "Orders_v2",
            "partitions": 12,
            "manage_topic": SPEC.manage_topic.model_copy(
                update={
                    "enabled": True,
                    "strimzi_cluster": "main",
                    "config": {"retention.ms": "60000"},
                }
            ),
        }
    )
    topic = manifests.kafka_topic(OWNER, spec)
    assert topic["metadata"]["name"] == "orders-v2"
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "main"
    assert topic["spec"] == {
        "topicName": "Orders_v2",
        "partitions": 12,
        "replicas": 3,
        "config": {"retention.ms": "60000"},
    }


def test_service_and_pdb_select_exactly_the_consumer_pods() -> None:
    pod_labels = build_deployment()["spec"]["template"]["metadata"]["labels"]
    service = manifests.metrics_service(OWNER, SPEC)
    pdb = manifests.pod_disruption_budget(OWNER)
    for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["port"] == 9200
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": manifests.selector_labels("orders")},
    }
    assert manifests.selector("orders") == (
        "app.kubernetes.io/name=hello-consumer,app.kubernetes.io/instance=orders"
    )


def test_deployment_survives_the_client_model_round_trip_unchanged() -> None:
    # Creating goes through client.V1Deployment; nothing may be lost on the way.
    body = build_deployment(replicas=2)
    model = client.V1Deployment.from_dict(body)
    assert client.ApiClient().sanitize_for_serialization(model) == body


def test_user_env_follows_the_operators_own_with_secret_and_config_map_refs() -> None:
    env = secured_container()["env"]
    assert [e["name"] for e in env[: len(manifests.OPERATOR_ENV)]] == list(manifests.OPERATOR_ENV)
    assert env[0] == {"name": "HELLO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS", "value": "kafka:9093"}
    assert env[len(manifests.OPERATOR_ENV) :] == [
        {"name": "HELLO_CONSUMER_KAFKA__SECURITY_PROTOCOL", "value": "SASL_SSL"},
        {"name": "HELLO_CONSUMER_KAFKA__SASL_MECHANISM", "value": "SCRAM-SHA-512"},
        {"name": "HELLO_CONSUMER_KAFKA__SASL_USERNAME", "value": "hello-consumer"},
        {
            "name": "HELLO_CONSUMER_KAFKA__SASL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "hello-consumer", "key": "password"}},
        },
        {
            "name": "HELLO_CONSUMER_KAFKA__EXTRA__SSL.CA.PEM",
            "valueFrom": {"secretKeyRef": {"name": "main-cluster-ca-cert", "key": "ca.crt"}},
        },
        {
            "name": "HELLO_CONSUMER_LOG__LEVEL",
            "valueFrom": {"configMapKeyRef": {"name": "tuning", "key": "level", "optional": True}},
        },
    ]


def test_env_from_is_passed_as_written_and_left_out_when_unset() -> None:
    assert secured_container()["envFrom"] == [
        {"prefix": "HELLO_CONSUMER_", "configMapRef": {"name": "consumer-tuning"}},
        {"secretRef": {"name": "extra", "optional": False}},
    ]
    (plain,) = build_deployment()["spec"]["template"]["spec"]["containers"]
    assert "envFrom" not in plain


def test_user_env_cannot_override_what_the_operator_derives_from_the_spec() -> None:
    # The CRD refuses these; if one gets through anyway the operator's value stays.
    spec = with_consumer(
        env=PipelineSpec.from_body(
            {
                "topic": "x",
                "consumerGroup": "x",
                "consumer": {
                    "env": [
                        {"name": "HELLO_CONSUMER_INPUT_TOPIC", "value": "other"},
                        {"name": "hello_consumer_group_id", "value": "other"},
                        {"name": "HELLO_CONSUMER_KAFKA__SASL_USERNAME", "value": "u"},
                    ]
                },
            }
        ).consumer.env
    )
    deployment = manifests.deployment(
        OWNER, spec, image="i", bootstrap_servers="kafka:9092", replicas=1
    )
    env = env_of(deployment)
    assert env["HELLO_CONSUMER_INPUT_TOPIC"] == "default-topic"
    assert "hello_consumer_group_id" not in env
    assert env["HELLO_CONSUMER_KAFKA__SASL_USERNAME"] == "u"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert len(container["env"]) == len(manifests.OPERATOR_ENV) + 1


def test_consumer_pod_is_non_root_read_only_with_a_writable_tmp() -> None:
    pod = build_deployment()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    assert pod["automountServiceAccountToken"] is False


def test_termination_grace_outlasts_the_consumers_own_shutdown_grace() -> None:
    pod = build_deployment()["spec"]["template"]["spec"]
    shutdown = ConsumerSettings.model_fields["shutdown_grace_seconds"].default
    assert shutdown == 20.0
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["terminationGracePeriodSeconds"] > shutdown


def test_secured_deployment_survives_the_client_model_round_trip_unchanged() -> None:
    body = manifests.deployment(OWNER, SECURED, image="i", bootstrap_servers="k:1", replicas=1)
    model = client.V1Deployment.from_dict(body)
    assert client.ApiClient().sanitize_for_serialization(model) == body
