"""hello-operator against a real kube-apiserver and a real Kafka broker.

No kubelet or controller-manager runs: Deployments get no pods, so these
tests assert on what the operator writes (spec.replicas, status, Events),
never on pods.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer
from kubernetes import client

from hello_dev.kafka import KafkaCluster
from hello_dev.ports import free_port
from tests.integration.operator.conftest import (
    EXAMPLE,
    GROUP,
    PLURAL,
    VERSION,
    OperatorProcess,
    apply,
    commit_offsets,
    condition,
    deployment_replicas,
    events,
    eventually,
    load_yaml,
    pipeline,
    read_pipeline,
    timeout_for_session,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(timeout_for_session())]

StartOperator = Callable[..., OperatorProcess]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(kafka: KafkaCluster, topic: str, per_partition: dict[int, int]) -> None:
    # One produce request for the whole backlog (a long linger, then flush), so
    # a poll never sees part of it and scales twice on the way up.
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 1000})
    for partition, count in per_partition.items():
        for i in range(count):
            producer.produce(topic, value=b"hello %d" % i, partition=partition)
    assert producer.flush(30) == 0


def commit(kafka: KafkaCluster, group: str, topic: str, offsets: dict[int, int]) -> None:
    commit_offsets(kafka.bootstrap_servers, group, topic, offsets)


def scaling_pipeline(name: str, namespace: str, topic: str, group: str, **extra: Any) -> dict:  # type: ignore[type-arg]
    spec = {
        "topic": topic,
        "consumerGroup": group,
        "partitions": 4,
        "offsetResetPolicy": "earliest",
        "minReplicas": 0,
        "maxReplicas": 10,
        "lagThreshold": 10,
        "pollingInterval": 1,
        "scaleDownStabilizationSeconds": 4,
        "consumer": {"image": "registry.invalid/hello-platform:test"},
        **extra,
    }
    return pipeline(name, namespace, **spec)


def status_of(admin: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict(read_pipeline(admin, namespace, name).get("status") or {})


def consumer_env(*env: dict[str, Any]) -> dict[str, Any]:
    return {"topic": "t", "consumerGroup": "g", "consumer": {"env": list(env)}}


# -- the API server refuses bad specs ----------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"consumerGroup": "g"}, "spec.topic: Required value"),
        ({"topic": "t", "consumerGroup": "g", "minReplicas": -1}, "spec.minReplicas"),
        (
            {"topic": "t", "consumerGroup": "g", "minReplicas": 5, "maxReplicas": 2},
            "minReplicas must not be greater than maxReplicas",
        ),
        ({"topic": "t", "consumerGroup": "g", "lagThreshold": 0}, "spec.lagThreshold"),
        ({"topic": "t", "consumerGroup": "g", "pollingInterval": 0}, "spec.pollingInterval"),
        (
            {"topic": "t", "consumerGroup": "g", "persistentLagGraceSeconds": -1},
            "spec.persistentLagGraceSeconds: Invalid value: -1: spec.persistentLagGraceSeconds"
            " in body should be greater than or equal to 0",
        ),
        (
            {"topic": "t", "consumerGroup": "g", "persistentLagGraceSeconds": 3601},
            "spec.persistentLagGraceSeconds: Invalid value: 3601: spec.persistentLagGraceSeconds"
            " in body should be less than or equal to 3600",
        ),
        (
            {"topic": "t", "consumerGroup": "g", "offsetResetPolicy": "middle"},
            'spec.offsetResetPolicy: Unsupported value: "middle"',
        ),
        (
            {
                "topic": "t",
                "consumerGroup": "g",
                "allowIdleConsumers": True,
                "limitToPartitionsWithLag": True,
            },
            "allowIdleConsumers and limitToPartitionsWithLag cannot both be true",
        ),
        ({"topic": "has space", "consumerGroup": "g"}, "spec.topic"),
        (
            {"topic": "..", "consumerGroup": "g"},
            "spec.topic: Invalid value: \"..\": '.' and '..' are not valid Kafka topic names",
        ),
        (
            {"topic": "t", "consumerGroup": "g", "deadLetterTopic": "."},
            "spec.deadLetterTopic: Invalid value: \".\": '.' and '..' are not valid Kafka"
            " topic names",
        ),
        (
            {"topic": "t", "consumerGroup": "g", "outputTopic": "t"},
            "topic must differ from outputTopic",
        ),
        (
            {"topic": "t", "consumerGroup": "g", "deadLetterTopic": "t"},
            "spec: Invalid value: topic must differ from outputTopic and deadLetterTopic",
        ),
        (
            {"topic": "t", "consumerGroup": "g", "outputTopic": "o", "deadLetterTopic": "o"},
            "spec: Invalid value: outputTopic must differ from deadLetterTopic",
        ),
        (
            # Defaults apply before validation: the default deadLetterTopic collides.
            {"topic": "t", "consumerGroup": "g", "outputTopic": "default-topic.dlt"},
            "spec: Invalid value: outputTopic must differ from deadLetterTopic",
        ),
        (
            {"topic": "t", "consumerGroup": "g", "manageTopic": {"enabled": True}},
            "manageTopic.strimziCluster is required",
        ),
        ({"topic": "t", "consumerGroup": "g", "maxReplicas": "many"}, "spec.maxReplicas"),
        (
            consumer_env({"name": "HELLO_CONSUMER_INPUT_TOPIC", "value": "other"}),
            'spec.consumer.env[0].name: Invalid value: "HELLO_CONSUMER_INPUT_TOPIC": is set by the'
            " operator (from the pipeline spec, or its own Kafka settings for the brokers) and"
            " cannot be overridden",
        ),
        (
            consumer_env(
                {"name": "HELLO_CONSUMER_KAFKA__SASL_USERNAME", "value": "u"},
                {"name": "hello_consumer_group_id", "value": "other"},
            ),
            'spec.consumer.env[1].name: Invalid value: "hello_consumer_group_id": is set by the'
            " operator",
        ),
        (
            consumer_env({"name": "HELLO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS", "value": "x:1"}),
            "cannot be overridden",
        ),
        (consumer_env({"value": "v"}), "spec.consumer.env[0].name: Required value"),
        (
            consumer_env(
                {"name": "HELLO_CONSUMER_KAFKA__SASL_USERNAME", "value": "u"},
                {"name": "HELLO_CONSUMER_MAX_ATTEMPTS", "value": "5"},
                {"name": "HELLO_CONSUMER_KAFKA__SASL_USERNAME", "value": "other"},
            ),
            'spec.consumer.env[2]: Duplicate value: {"name":"HELLO_CONSUMER_KAFKA__SASL_USERNAME"}',
        ),
        (consumer_env({"name": "1BAD", "value": "v"}), "spec.consumer.env[0].name"),
        (
            consumer_env(
                {
                    "name": "A",
                    "value": "v",
                    "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                }
            ),
            "value and valueFrom are mutually exclusive",
        ),
        (
            consumer_env({"name": "A", "valueFrom": {}}),
            "valueFrom needs exactly one of secretKeyRef and configMapKeyRef",
        ),
        (
            consumer_env({"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}),
            "spec.consumer.env[0].valueFrom.secretKeyRef.key: Required value",
        ),
        (
            consumer_env(*({"name": f"V{i}", "value": "v"} for i in range(65))),
            "spec.consumer.env: Too many: 65: must have at most 64 items",
        ),
        (
            {"topic": "t", "consumerGroup": "g", "consumer": {"envFrom": [{"prefix": "P_"}]}},
            "each envFrom entry needs exactly one of secretRef and configMapRef",
        ),
    ],
)
def test_invalid_specs_are_refused_by_the_api_server(
    admin: client.ApiClient, namespace: str, spec: dict[str, Any], expected: str
) -> None:
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(admin).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, pipeline("bad", namespace, **spec)
        )
    assert refused.value.status == 422
    assert expected in refusal(refused.value)


def refusal(exc: client.ApiException) -> str:
    """The message the API server gives a user (what kubectl prints)."""
    message: str = json.loads(exc.body)["message"]
    return message


def test_a_name_too_long_for_owned_objects_is_refused(
    admin: client.ApiClient, namespace: str
) -> None:
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(admin).create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            pipeline("p" * 55, namespace, topic="t", consumerGroup="g"),
        )
    assert refused.value.status == 422
    assert "at most 54 characters" in refusal(refused.value)


def test_defaults_are_filled_in_by_the_api_server(admin: client.ApiClient, namespace: str) -> None:
    created = client.CustomObjectsApi(admin).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, pipeline("d", namespace, topic="t", consumerGroup="g")
    )
    spec = created["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"], spec["lagThreshold"]) == (0, 10, 100)
    assert spec["offsetResetPolicy"] == "earliest"
    assert (spec["excludePersistentLag"], spec["persistentLagGraceSeconds"]) == (False, 60)
    assert spec["consumer"]["httpPort"] == 9102
    assert spec["manageTopic"] == {"enabled": False, "replicas": 3}
    assert "env" not in spec["consumer"] and "envFrom" not in spec["consumer"]


# -- the example from the repository ------------------------------------------------------


def test_example_pipeline_is_reconciled_into_owned_objects(
    admin: client.ApiClient, namespace: str, start_operator: StartOperator, kafka: KafkaCluster
) -> None:
    operator = start_operator()
    docs = load_yaml(EXAMPLE, namespace=namespace)
    apply(admin, docs)  # kubectl apply --server-side -f examples/hellopipeline.yaml
    name = docs[0]["metadata"]["name"]
    uid = read_pipeline(admin, namespace, name)["metadata"]["uid"]
    owned = f"{name}-consumer"

    deployment = eventually(
        lambda: client.AppsV1Api(admin).read_namespaced_deployment(owned, namespace),
        what="consumer Deployment created",
    )
    (container,) = deployment.spec.template.spec.containers
    env = {e.name: e.value for e in container.env}
    assert env["HELLO_CONSUMER_INPUT_TOPIC"] == "default-topic"
    assert env["HELLO_CONSUMER_GROUP_ID"] == "hello-consumer"
    assert env["HELLO_CONSUMER_AUTO_OFFSET_RESET"] == "earliest"
    assert env["HELLO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS"] == kafka.bootstrap_servers
    assert container.command == ["hello-consumer"]
    assert deployment.spec.replicas == 0  # minReplicas, until lag says otherwise

    # The operator applies its objects one after another: the Deployment may
    # exist a moment before the others.
    core, policy = client.CoreV1Api(admin), client.PolicyV1Api(admin)
    children = [
        deployment,
        eventually(
            lambda: core.read_namespaced_service_account(owned, namespace),
            what="ServiceAccount created",
        ),
        eventually(lambda: core.read_namespaced_service(owned, namespace), what="Service created"),
        eventually(
            lambda: policy.read_namespaced_pod_disruption_budget(owned, namespace),
            what="PodDisruptionBudget created",
        ),
    ]
    for child in children:
        (ref,) = child.metadata.owner_references
        assert (ref.kind, ref.name, ref.uid, ref.controller) == ("HelloPipeline", name, uid, True)

    body = eventually(
        lambda: (
            (b := read_pipeline(admin, namespace, name)).get("status", {}).get("observedGeneration")
            and b
        ),
        what="status observedGeneration",
    )
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    assert body["status"]["selector"] == (
        f"app.kubernetes.io/name=hello-consumer,app.kubernetes.io/instance={name}"
    )
    # No cleanup outside Kubernetes exists, so no finalizer blocks deletion.
    assert not body["metadata"].get("finalizers")
    assert "Forbidden" not in operator.log(), operator.log()[-3000:]


# -- scaling by lag -----------------------------------------------------------------------


def test_replicas_follow_lag_up_capped_and_down_after_the_window(
    admin: client.ApiClient, namespace: str, start_operator: StartOperator, kafka: KafkaCluster
) -> None:
    topic, group, name = unique("orders"), unique("group"), "orders"
    kafka.create_topics({topic: 4})
    operator = start_operator()
    client.CustomObjectsApi(admin).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, scaling_pipeline(name, namespace, topic, group)
    )

    # No messages, no committed offsets: nothing to read, so zero replicas.
    eventually(lambda: status_of(admin, namespace, name).get("totalLag") == 0, what="first poll")
    assert deployment_replicas(admin, namespace, name) == 0
    eventually(
        lambda: (
            condition(read_pipeline(admin, namespace, name), "KafkaReachable")["status"] == "True"
        ),
        what="KafkaReachable",
    )

    # 25 messages per partition: lag 100 / threshold 10 → 10, capped at 4 partitions.
    produce(kafka, topic, {0: 25, 1: 25, 2: 25, 3: 25})
    eventually(lambda: deployment_replicas(admin, namespace, name) == 4, what="scaled to 4")
    status = eventually(
        lambda: (s := status_of(admin, namespace, name)).get("desiredReplicas") == 4 and s,
        what="status records the scale",
    )
    assert status["totalLag"] == 100
    assert [p["lag"] for p in status["partitionLag"]] == [25, 25, 25, 25]
    assert status["lastDecision"].startswith("lag 100 / threshold 10 → 10; capped at 4 partitions")
    assert status["lastScaleTime"]
    scaled_up = [e for e in events(admin, namespace, name) if e.reason == "ScaledUp"]
    assert len(scaled_up) == 1
    assert "capped at 4 partitions" in scaled_up[0].message
    # The grace clock of every partition survives the API server's pruning.
    memory = eventually(
        lambda: (
            (m := status_of(admin, namespace, name)["decisionState"]["partitions"])
            and all(p.get("replicas") == 4 and p.get("since") for p in m)
            and m
        ),
        what="decisionState remembers the grace clock at 4 replicas",
    )
    # A merge patch drops null fields: "no committed offset" arrives as no key.
    assert [(p["partition"], p.get("committed"), p["logEnd"]) for p in memory] == [
        (0, None, 25),
        (1, None, 25),
        (2, None, 25),
        (3, None, 25),
    ]

    # The group catches up on all but partition 3: lag 25 → 3 replicas, but a
    # scale-down must first wait out the window.
    commit(kafka, group, topic, {0: 25, 1: 25, 2: 25})
    # One snapshot of the pipeline: the hold lasts only a few polls.
    held = eventually(
        lambda: (
            "held by window"
            in ((b := read_pipeline(admin, namespace, name)).get("status") or {}).get(
                "lastDecision", ""
            )
            and b
        ),
        what="scale-down held by the window",
    )
    assert held["status"]["totalLag"] == 25
    assert condition(held, "Scaling")["reason"] == "HeldByWindow"
    assert held["status"]["replicas"] == 4
    eventually(lambda: deployment_replicas(admin, namespace, name) == 3, what="down to 3")

    commit(kafka, group, topic, {3: 25})
    eventually(lambda: deployment_replicas(admin, namespace, name) == 0, what="down to 0")
    # The Event is posted just after the scale.
    eventually(
        lambda: (
            [e.reason for e in events(admin, namespace, name)]
            == ["ScaledUp", "ScaledDown", "ScaledDown"]
        ),
        what="one Event per scale",
    )
    eventually(
        lambda: condition(read_pipeline(admin, namespace, name), "Ready")["status"] == "True",
        what="Ready",
    )
    assert "Forbidden" not in operator.log()


def test_restarted_operator_converges_without_scaling_twice(
    admin: client.ApiClient, namespace: str, start_operator: StartOperator, kafka: KafkaCluster
) -> None:
    topic, group, name = unique("restart"), unique("group"), "restart"
    kafka.create_topics({topic: 4})
    # The killed operator's peering entry outlives it for a minute; a successor
    # of lower priority would pause for it until then.
    first = start_operator(priority=1)
    client.CustomObjectsApi(admin).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        scaling_pipeline(name, namespace, topic, group, scaleUpStep=1, pollingInterval=2),
    )
    produce(kafka, topic, {0: 30, 1: 30, 2: 30, 3: 30})
    # Step-limited to +1 per poll; kill the operator mid-way up.
    eventually(lambda: (deployment_replicas(admin, namespace, name) or 0) >= 2, what="scaling")
    first.stop(kill=True)
    at_kill = deployment_replicas(admin, namespace, name)
    assert at_kill is not None and at_kill < 4

    start_operator(priority=2)
    eventually(lambda: deployment_replicas(admin, namespace, name) == 4, what="converged at 4")
    before = status_of(admin, namespace, name)["lastPollTime"]
    eventually(
        lambda: status_of(admin, namespace, name)["lastPollTime"] > before,
        what="more polls after converging",
        timeout=20,
    )
    steps = [e.message.rsplit("; ", 1)[-1] for e in events(admin, namespace, name)]
    # Each +1 step happened once (an Event can be lost to the kill, never doubled).
    assert len(steps) == len(set(steps)), steps
    assert set(steps) <= {"replicas 0 → 1", "replicas 1 → 2", "replicas 2 → 3", "replicas 3 → 4"}
    assert "replicas 3 → 4" in steps
    assert deployment_replicas(admin, namespace, name) == 4


def test_unreachable_kafka_keeps_replicas_and_says_why(
    admin: client.ApiClient, namespace: str, start_operator: StartOperator
) -> None:
    name = "offline"
    operator = start_operator(bootstrap=f"127.0.0.1:{free_port()}")  # nothing listens there
    client.CustomObjectsApi(admin).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        scaling_pipeline(name, namespace, "t", "g", minReplicas=2),
    )
    body = eventually(
        lambda: (
            condition(b := read_pipeline(admin, namespace, name), "KafkaReachable").get("status")
            == "False"
            and b
        ),
        what="KafkaReachable=False",
    )
    kafka_condition = condition(body, "KafkaReachable")
    assert kafka_condition["reason"] == "KafkaUnreachable"
    assert "Kafka did not answer" in kafka_condition["message"]
    assert condition(body, "Ready")["status"] == "False"
    time.sleep(3)  # several polling intervals
    assert deployment_replicas(admin, namespace, name) == 2
    assert not [e for e in events(admin, namespace, name) if e.reason.startswith("Scaled")]
    # Within its first minute an outage is one log line, however many polls failed.
    eventually(
        lambda: failed_kafka_polls(operator, namespace, name) >= 3,
        what="three failed polls",
    )
    warnings = [
        line
        for line in operator.log().splitlines()
        if "kafka unreachable, replicas kept" in line and f"name={name} " in line
    ]
    assert len(warnings) == 1, warnings
    assert " suppressed=0 error=Kafka did not answer" in warnings[0]


def failed_kafka_polls(operator: OperatorProcess, namespace: str, name: str) -> float:
    """hello_operator_poll_errors_total{cause="kafka_unreachable"} of one pipeline."""
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    labels = (f'namespace="{namespace}"', f'pipeline="{name}"', 'cause="kafka_unreachable"')
    for line in text.splitlines():
        if line.startswith("hello_operator_poll_errors_total{") and all(
            label in line for label in labels
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_paused_pipeline_follows_kubectl_scale(
    admin: client.ApiClient, namespace: str, start_operator: StartOperator, kafka: KafkaCluster
) -> None:
    topic, group, name = unique("paused"), unique("group"), "paused"
    kafka.create_topics({topic: 2})
    start_operator()
    custom = client.CustomObjectsApi(admin)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        scaling_pipeline(name, namespace, topic, group, paused=True),
    )
    eventually(lambda: deployment_replicas(admin, namespace, name) == 0, what="created")
    # kubectl scale hellopipeline/paused --replicas=3 patches the scale subresource.
    custom.patch_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": {"replicas": 3}}
    )
    eventually(lambda: deployment_replicas(admin, namespace, name) == 3, what="manual scale")
    scale = custom.get_namespaced_custom_object_scale(GROUP, VERSION, namespace, PLURAL, name)
    eventually(
        lambda: (
            custom.get_namespaced_custom_object_scale(GROUP, VERSION, namespace, PLURAL, name)[
                "status"
            ]["replicas"]
            == 3
        ),
        what="scale subresource reports 3",
    )
    assert scale["spec"]["replicas"] == 3
    produce(kafka, topic, {0: 500})  # lag alone must not move a paused pipeline
    time.sleep(3)
    assert deployment_replicas(admin, namespace, name) == 3
    body = read_pipeline(admin, namespace, name)
    assert condition(body, "Scaling")["reason"] == "Paused"


def test_only_one_of_two_operator_replicas_acts_and_the_other_takes_over(
    admin: client.ApiClient, namespace: str, start_operator: StartOperator, kafka: KafkaCluster
) -> None:
    topic, group, name = unique("peers"), unique("group"), "peers"
    kafka.create_topics({topic: 2})
    leader = start_operator(priority=10)
    eventually(lambda: "Keep-alive in 'hello-operator'" in leader.log(), what="leader peered")
    follower = start_operator(priority=1)
    # The follower starts paused and stays so while a higher priority is alive.
    eventually(
        lambda: "Pausing the watch-stream for hellopipelines" in follower.log(),
        what="follower paused",
    )
    client.CustomObjectsApi(admin).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, scaling_pipeline(name, namespace, topic, group)
    )
    produce(kafka, topic, {0: 15, 1: 5})
    eventually(lambda: deployment_replicas(admin, namespace, name) == 2, what="scaled to 2")
    time.sleep(2)
    started = f"scale loop started namespace={namespace} name={name}"
    assert started in leader.log()
    assert started not in follower.log(), follower.log()[-3000:]
    assert len([e for e in events(admin, namespace, name) if e.reason == "ScaledUp"]) == 1

    # The leader leaves; the follower resumes and carries on from the saved state.
    leader.stop()
    eventually(lambda: started in follower.log(), what="follower takes over", timeout=90)
    commit(kafka, group, topic, {0: 15, 1: 5})
    eventually(lambda: deployment_replicas(admin, namespace, name) == 0, what="follower scales")
    eventually(
        lambda: [e.reason for e in events(admin, namespace, name)] == ["ScaledUp", "ScaledDown"],
        what="one Event per scale",
    )


# -- consumers of a secured Kafka -----------------------------------------------------------


def test_consumer_env_and_env_from_reach_the_deployment_and_follow_spec_edits(
    admin: client.ApiClient, namespace: str, start_operator: StartOperator, kafka: KafkaCluster
) -> None:
    start_operator()
    name = "secured"
    scram = [
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
    ]
    env_from = [{"prefix": "HELLO_CONSUMER_", "configMapRef": {"name": "tuning"}}]
    body = pipeline(
        name,
        namespace,
        topic="orders",
        consumerGroup="orders-group",
        consumer={
            "image": "registry.invalid/hello-platform:test",
            "env": scram,
            "envFrom": env_from,
        },
    )
    apply(admin, [body])
    apps = client.AppsV1Api(admin)
    api = client.ApiClient()

    def container() -> dict[str, Any]:
        found = apps.read_namespaced_deployment(f"{name}-consumer", namespace)
        (c,) = api.sanitize_for_serialization(found)["spec"]["template"]["spec"]["containers"]
        return dict(c)

    created = eventually(container, what="consumer Deployment created")
    names = [e["name"] for e in created["env"]]
    assert names[:8] == [
        "HELLO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS",
        "HELLO_CONSUMER_INPUT_TOPIC",
        "HELLO_CONSUMER_OUTPUT_TOPIC",
        "HELLO_CONSUMER_DEAD_LETTER_TOPIC",
        "HELLO_CONSUMER_GROUP_ID",
        "HELLO_CONSUMER_AUTO_OFFSET_RESET",
        "HELLO_CONSUMER_HTTP_PORT",
        "HELLO_CONSUMER_LOG__FORMAT",
    ]
    assert created["env"][0]["value"] == kafka.bootstrap_servers
    assert created["env"][8:] == scram
    assert created["envFrom"] == env_from

    # The scaler's field manager owns the replicas alone; the reconciler owns the rest
    # (after the third of the three applies that create the Deployment).
    def owners() -> dict[tuple[str, str], Any]:
        found = apps.read_namespaced_deployment(f"{name}-consumer", namespace)
        return {(m.manager, m.operation): m.fields_v1 for m in found.metadata.managed_fields}

    settled = eventually(
        lambda: (
            (o := owners()).get(("hello-operator-scaler", "Apply"))
            == {"f:spec": {"f:replicas": {}}}
            and o
        ),
        what="the scaler owns only spec.replicas",
    )
    assert set(settled) == {("hello-operator", "Apply"), ("hello-operator-scaler", "Apply")}

    # Editing the spec re-applies: a dropped entry and envFrom disappear from the pod template.
    body["spec"]["consumer"] = {
        "image": "registry.invalid/hello-platform:test",
        "env": scram[:1],
    }
    apply(admin, [body])
    edited = eventually(
        lambda: (c := container())["env"][8:] == scram[:1] and c,
        what="Deployment follows the edited env",
    )
    assert "envFrom" not in edited
    status = eventually(
        lambda: (
            (b := read_pipeline(admin, namespace, name)).get("status", {}).get("observedGeneration")
            == b["metadata"]["generation"]
        ),
        what="edit reconciled",
    )
    assert status
