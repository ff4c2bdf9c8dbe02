"""The Helm chart, rendered by a real helm v4 (built from the Go module proxy).

Nothing here talks to a cluster: ``helm lint`` and ``helm template`` only.
The first run builds helm into the cache (several minutes on two cores);
later runs reuse it.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from hello_dev.helm import ensure_helm
from tests.deploy_contract import CHART, REPO, unknown_env_names

RELEASE = "hello-platform"
NAMESPACE = "hello"

Docs = list[dict[str, Any]]
Render = Callable[..., Docs]


@pytest.fixture(scope="session")
def helm() -> pathlib.Path:
    return ensure_helm()


def _run(helm: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _template_args(sets: tuple[str, ...], values: tuple[pathlib.Path, ...]) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


@pytest.fixture(scope="session")
def render(helm: pathlib.Path) -> Render:
    def _render(*sets: str, values: tuple[pathlib.Path, ...] = ()) -> Docs:
        result = _run(helm, *_template_args(sets, values))
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


@pytest.fixture(scope="session")
def refuse(helm: pathlib.Path) -> Callable[..., str]:
    """Render expecting failure; returns helm's error output."""

    def _refuse(*sets: str) -> str:
        result = _run(helm, *_template_args(sets, ()))
        assert result.returncode != 0, f"helm template accepted {sets}"
        return result.stderr

    return _refuse


@pytest.fixture(scope="session")
def defaults(render: Render) -> Docs:
    return render()


def find(docs: Docs, kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    found: dict[str, Any] = matches[0]
    return found


def kinds(docs: Docs) -> list[str]:
    return [d["kind"] for d in docs]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    (found,) = [c for c in containers if c["name"] == name]
    return found


def env_of(container_spec: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container_spec["env"]}


# -- lint ---------------------------------------------------------------------


def test_chart_passes_strict_lint_with_default_values(helm: pathlib.Path) -> None:
    result = _run(helm, "lint", "--strict", str(CHART))

    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_passes_strict_lint_with_kind_values(helm: pathlib.Path) -> None:
    result = _run(
        helm, "lint", "--strict", str(CHART), "--values", str(REPO / "deploy/kind-values.yaml")
    )

    assert result.returncode == 0, result.stdout + result.stderr


# -- defaults -----------------------------------------------------------------


def test_defaults_render_api_strimzi_cluster_topics_and_pipeline(defaults: Docs) -> None:
    api = f"{RELEASE}-api"
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "ServiceAccount"):
        find(defaults, kind, api)
    find(defaults, "Kafka", RELEASE)
    find(defaults, "KafkaNodePool")
    find(defaults, "HelloPipeline", RELEASE)
    topics = {d["spec"]["topicName"] for d in defaults if d["kind"] == "KafkaTopic"}

    assert topics == {"default-topic", "greetings", "default-topic.dlt"}
    assert "Ingress" not in kinds(defaults)
    assert "HorizontalPodAutoscaler" not in kinds(defaults)
    names = {d["metadata"]["name"] for d in defaults if d["kind"] == "Deployment"}
    assert f"{RELEASE}-consumer" not in names, "the operator owns the consumer Deployment"


def test_api_pod_is_non_root_read_only_without_capabilities(defaults: Docs) -> None:
    deployment = find(defaults, "Deployment", f"{RELEASE}-api")
    pod = deployment["spec"]["template"]["spec"]
    api = container(deployment, "api")

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert api["securityContext"]["readOnlyRootFilesystem"] is True
    assert api["securityContext"]["allowPrivilegeEscalation"] is False
    assert api["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in api["volumeMounts"]}
    assert "/tmp" in mounts, "read-only root needs a writable /tmp"


def test_api_readiness_asks_readyz_which_knows_about_kafka(defaults: Docs) -> None:
    api = container(find(defaults, "Deployment", f"{RELEASE}-api"), "api")
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}

    # gRPC health says SERVING whatever Kafka's state; /readyz does not.
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "grpc" not in api["readinessProbe"]
    assert api["startupProbe"]["grpc"] == {"port": 50051}
    assert api["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert ports == {"grpc": 50051, "http": 9101}


def test_api_env_points_at_strimzi_bootstrap_and_input_topic(defaults: Docs) -> None:
    deployment = find(defaults, "Deployment", f"{RELEASE}-api")
    env = env_of(container(deployment, "api"))

    assert env["HELLO_API_LISTEN_ADDRESS"] == "0.0.0.0:50051"
    assert env["HELLO_API_TOPIC"] == "default-topic"
    assert env["HELLO_API_HTTP_PORT"] == "9101"
    assert env["HELLO_API_SHUTDOWN_GRACE_SECONDS"] == "20"
    assert env["HELLO_API_KAFKA__BOOTSTRAP_SERVERS"] == f"{RELEASE}-kafka-bootstrap:9092"
    assert env["HELLO_API_KAFKA__SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert env["HELLO_API_LOG__FORMAT"] == "json"
    assert not unknown_env_names(set(env), "HELLO_API_")


def test_api_termination_grace_outlasts_its_shutdown_grace(defaults: Docs) -> None:
    deployment = find(defaults, "Deployment", f"{RELEASE}-api")
    env = env_of(container(deployment, "api"))
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]

    assert grace > float(env["HELLO_API_SHUTDOWN_GRACE_SECONDS"])


def test_api_service_names_the_grpc_port_for_ingress_controllers(defaults: Docs) -> None:
    service = find(defaults, "Service", f"{RELEASE}-api")
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")

    assert grpc == {
        "name": "grpc",
        "port": 50051,
        "targetPort": "grpc",
        "protocol": "TCP",
        "appProtocol": "grpc",
    }
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api"


def test_strimzi_cluster_is_kraft_with_a_dual_role_node_pool(defaults: Docs) -> None:
    kafka = find(defaults, "Kafka")
    pool = find(defaults, "KafkaNodePool")

    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert "zookeeper" not in kafka["spec"]
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["spec"]["replicas"] == 1
    config = kafka["spec"]["kafka"]["config"]
    assert config["transaction.state.log.replication.factor"] == 1
    assert config["auto.create.topics.enable"] is False


def test_kafka_topics_belong_to_the_cluster_and_keep_their_dotted_names(defaults: Docs) -> None:
    topics = [d for d in defaults if d["kind"] == "KafkaTopic"]
    dlt = next(t for t in topics if t["spec"]["topicName"] == "default-topic.dlt")

    assert all(t["metadata"]["labels"]["strimzi.io/cluster"] == RELEASE for t in topics)
    assert dlt["spec"]["partitions"] == 1
    assert dlt["spec"]["config"]["retention.ms"] == "1209600000"


# -- HelloPipeline ------------------------------------------------------------


def test_pipeline_spec_carries_topics_group_scaling_and_consumer_image(defaults: Docs) -> None:
    pipeline = find(defaults, "HelloPipeline", RELEASE)
    spec = pipeline["spec"]

    assert pipeline["apiVersion"] == "hello-platform.dev/v1alpha1"
    assert spec["topic"] == "default-topic"
    assert spec["outputTopic"] == "greetings"
    assert spec["deadLetterTopic"] == "default-topic.dlt"
    assert spec["consumerGroup"] == "hello-consumer"
    assert spec["partitions"] == 6
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 6)
    assert spec["consumer"]["image"] == "hello-platform:0.1.0"
    assert spec["consumer"]["httpPort"] == 9102
    assert spec["manageTopic"] == {"enabled": False}, "the chart already creates the topics"


def test_pipeline_extra_spec_overrides_and_adds_fields(render: Render) -> None:
    docs = render("pipeline.extraSpec.scaleUpStep=2", "pipeline.extraSpec.maxReplicas=9")
    spec = find(docs, "HelloPipeline")["spec"]

    assert spec["scaleUpStep"] == 2
    assert spec["maxReplicas"] == 9


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _model_keys(model: Any) -> dict[str, Any]:
    """camelCase field name -> nested model (or None) for a pydantic model."""
    from pydantic import BaseModel

    keys: dict[str, Any] = {}
    for field_name, field in model.model_fields.items():
        nested = field.annotation
        is_model = isinstance(nested, type) and issubclass(nested, BaseModel)
        keys[_camel(field_name)] = nested if is_model else None
    return keys


def test_pipeline_spec_uses_only_fields_the_operator_reads(defaults: Docs) -> None:
    spec_module = pytest.importorskip("hello_operator.spec")
    spec = find(defaults, "HelloPipeline")["spec"]

    def unknown(value: dict[str, Any], model: Any, path: str) -> list[str]:
        keys = _model_keys(model)
        found = []
        for key, item in value.items():
            if key not in keys:
                found.append(path + key)
            elif keys[key] is not None and isinstance(item, dict):
                found += unknown(item, keys[key], f"{path}{key}.")
        return found

    # The operator ignores unknown fields silently, so a typo here would
    # never surface at runtime.
    assert not unknown(spec, spec_module.PipelineSpec, "spec.")


def test_pipeline_spec_fits_the_shipped_crd_schema(defaults: Docs) -> None:
    crd_path = CHART / "crds" / "hellopipelines.yaml"
    if not crd_path.exists():
        pytest.skip("the HelloPipeline CRD is not in the chart yet")
    crd = yaml.safe_load(crd_path.read_text())
    pipeline = find(defaults, "HelloPipeline")
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]

    assert pipeline["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"

    def unknown(value: Any, schema: dict[str, Any], path: str) -> list[str]:
        if not isinstance(value, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
            return []
        props = schema.get("properties", {})
        found = []
        for key, item in value.items():
            if key in props:
                found += unknown(item, props[key], f"{path}{key}.")
            elif "additionalProperties" not in schema:
                found.append(path + key)
        return found

    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert not unknown(pipeline["spec"], spec_schema, "spec.")


# -- consumer without a pipeline --------------------------------------------


@pytest.fixture(scope="session")
def static_consumer(render: Render) -> Docs:
    return render("pipeline.enabled=false")


def test_consumer_deployment_is_rendered_only_without_a_pipeline(static_consumer: Docs) -> None:
    consumer = f"{RELEASE}-consumer"
    for kind in ("Deployment", "PodDisruptionBudget", "ServiceAccount"):
        find(static_consumer, kind, consumer)

    assert "HelloPipeline" not in kinds(static_consumer)


def test_consumer_probes_hit_livez_and_readyz_on_its_metrics_port(static_consumer: Docs) -> None:
    consumer = container(find(static_consumer, "Deployment", f"{RELEASE}-consumer"), "consumer")
    ports = {p["name"]: p["containerPort"] for p in consumer["ports"]}

    assert ports == {"http": 9102}
    assert consumer["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert consumer["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert consumer["command"] == ["hello-consumer"]


def test_consumer_env_names_topics_group_and_is_accepted(static_consumer: Docs) -> None:
    deployment = find(static_consumer, "Deployment", f"{RELEASE}-consumer")
    env = env_of(container(deployment, "consumer"))
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]

    assert env["HELLO_CONSUMER_INPUT_TOPIC"] == "default-topic"
    assert env["HELLO_CONSUMER_OUTPUT_TOPIC"] == "greetings"
    assert env["HELLO_CONSUMER_DEAD_LETTER_TOPIC"] == "default-topic.dlt"
    assert env["HELLO_CONSUMER_GROUP_ID"] == "hello-consumer"
    assert env["HELLO_CONSUMER_HTTP_PORT"] == "9102"
    assert grace > float(env["HELLO_CONSUMER_SHUTDOWN_GRACE_SECONDS"])
    assert not unknown_env_names(set(env), "HELLO_CONSUMER_")


def test_consumer_pod_has_the_same_security_defaults_as_the_api(static_consumer: Docs) -> None:
    deployment = find(static_consumer, "Deployment", f"{RELEASE}-consumer")
    consumer = container(deployment, "consumer")

    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert consumer["securityContext"]["readOnlyRootFilesystem"] is True
    assert consumer["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_consumer_selector_matches_its_pod_labels(static_consumer: Docs) -> None:
    deployment = find(static_consumer, "Deployment", f"{RELEASE}-consumer")
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    assert selector.items() <= labels.items()
    assert selector["app.kubernetes.io/component"] == "consumer"


# -- overrides ----------------------------------------------------------------


def test_replica_count_sets_api_replicas(render: Render) -> None:
    docs = render("api.replicaCount=3")

    assert find(docs, "Deployment", f"{RELEASE}-api")["spec"]["replicas"] == 3


def test_autoscaling_replaces_fixed_replicas_with_an_hpa(render: Render) -> None:
    docs = render("api.autoscaling.enabled=true", "api.autoscaling.maxReplicas=4")
    hpa = find(docs, "HorizontalPodAutoscaler")

    assert "replicas" not in find(docs, "Deployment", f"{RELEASE}-api")["spec"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-api"


def test_ingress_speaks_grpc_to_the_api_service(render: Render) -> None:
    docs = render(
        "api.ingress.enabled=true",
        "api.ingress.host=hello.example.test",
        "api.ingress.tls.enabled=true",
        "api.ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/backend-protocol=HTTP",
    )
    ingress = find(docs, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]

    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == (
        "GRPC"
    ), "the backend only speaks gRPC, so a user override must not win"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert rule["host"] == "hello.example.test"
    assert backend == {"name": f"{RELEASE}-api", "port": {"name": "grpc"}}
    assert ingress["spec"]["tls"][0]["secretName"] == f"{RELEASE}-api-tls"


def test_external_kafka_needs_no_strimzi_resources(render: Render) -> None:
    docs = render("kafka.strimzi.enabled=false", "kafka.bootstrapServers=b-1.example.test:9092")
    env = env_of(container(find(docs, "Deployment", f"{RELEASE}-api"), "api"))

    assert not [d for d in docs if d["apiVersion"].startswith("kafka.strimzi.io/")]
    assert env["HELLO_API_KAFKA__BOOTSTRAP_SERVERS"] == "b-1.example.test:9092"


def test_sasl_password_and_ca_come_from_secrets(render: Render) -> None:
    docs = render(
        "kafka.securityProtocol=SASL_SSL",
        "kafka.sasl.mechanism=SCRAM-SHA-512",
        "kafka.sasl.username=hello",
        "kafka.sasl.passwordSecret.name=hello-kafka-user",
        "kafka.tls.caSecret.name=hello-platform-cluster-ca-cert",
    )
    deployment = find(docs, "Deployment", f"{RELEASE}-api")
    api = container(deployment, "api")
    env = env_of(api)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}

    assert env["HELLO_API_KAFKA__SASL_PASSWORD"] == {
        "secretKeyRef": {"name": "hello-kafka-user", "key": "password"}
    }
    assert env["HELLO_API_KAFKA__SSL_CA_LOCATION"] == "/etc/hello-platform/kafka-ca/ca.crt"
    assert volumes["kafka-ca"]["secret"]["secretName"] == "hello-platform-cluster-ca-cert"
    assert any(m["mountPath"] == "/etc/hello-platform/kafka-ca" for m in api["volumeMounts"])
    assert not unknown_env_names(set(env), "HELLO_API_")


def test_tiltfile_resources_are_deployments_the_chart_renders(render: Render) -> None:
    tree = ast.parse((REPO / "Tiltfile").read_text())
    wanted = set()
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "k8s_resource"
        ):
            continue
        # Resources are named RELEASE + '-suffix' in the Tiltfile.
        name = node.args[0]
        assert isinstance(name, ast.BinOp)
        assert isinstance(name.right, ast.Constant)
        wanted.add(RELEASE + str(name.right.value))
    docs = render(values=(REPO / "deploy/kind-values.yaml",))
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    if not (CHART / "templates" / "operator").exists():
        wanted.discard(f"{RELEASE}-operator")

    assert wanted
    assert wanted <= deployments, sorted(wanted - deployments)


# -- refused input ------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("logging.level=verbose", ["at '/logging/level'", "'DEBUG', 'INFO'"]),
        ("api.replicaCount=-1", ["at '/api/replicaCount'", "minimum"]),
        ("api.replicas=2", ["at '/api'", "'replicas' not allowed"]),
        ("kafka.strimzi.storage.type=nfs", ["at '/kafka/strimzi/storage/type'", "'ephemeral'"]),
        ("kafka.topics.input.name=bad topic", ["at '/kafka/topics/input/name'", "pattern"]),
        ("api.grpcPort=70000", ["at '/api/grpcPort'", "maximum"]),
    ],
)
def test_schema_refuses_invalid_values_naming_the_field(
    refuse: Callable[..., str], setting: str, words: list[str]
) -> None:
    error = refuse(setting)

    assert "values don't meet the specifications of the schema" in error
    for word in words:
        assert word in error, f"{word!r} not in: {error}"


def test_missing_bootstrap_without_strimzi_is_refused_with_the_fix(
    refuse: Callable[..., str],
) -> None:
    error = refuse("kafka.strimzi.enabled=false")

    assert "kafka.bootstrapServers is empty and kafka.strimzi.enabled is false" in error
    assert "set kafka.bootstrapServers" in error


def test_termination_grace_not_above_shutdown_grace_is_refused(
    refuse: Callable[..., str],
) -> None:
    error = refuse("api.terminationGracePeriodSeconds=20")

    assert "api.terminationGracePeriodSeconds (20) must be greater than" in error
    assert "api.shutdownGraceSeconds (20)" in error


def test_min_above_max_replicas_is_refused(refuse: Callable[..., str]) -> None:
    error = refuse("pipeline.minReplicas=5", "pipeline.maxReplicas=2")

    assert "pipeline.minReplicas (5) must not exceed pipeline.maxReplicas (2)" in error


def test_pipeline_consumers_get_the_kafka_security_settings_as_spec_env(render: Render) -> None:
    docs = render(
        "kafka.securityProtocol=SASL_SSL",
        "kafka.sasl.mechanism=SCRAM-SHA-512",
        "kafka.sasl.username=hello",
        "kafka.sasl.passwordSecret.name=hello-kafka-user",
        "kafka.tls.caSecret.name=hello-platform-cluster-ca-cert",
        "consumer.extraEnv[0].name=HELLO_CONSUMER_LOG__LEVEL",
        "consumer.extraEnv[0].value=DEBUG",
    )
    env = find(docs, "HelloPipeline")["spec"]["consumer"]["env"]

    assert env == [
        {"name": "HELLO_CONSUMER_KAFKA__SECURITY_PROTOCOL", "value": "SASL_SSL"},
        {"name": "HELLO_CONSUMER_KAFKA__SASL_MECHANISM", "value": "SCRAM-SHA-512"},
        {"name": "HELLO_CONSUMER_KAFKA__SASL_USERNAME", "value": "hello"},
        {
            "name": "HELLO_CONSUMER_KAFKA__SASL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "hello-kafka-user", "key": "password"}},
        },
        {
            # Operator-created pods mount nothing: the CA goes as PEM text (ssl.ca.pem).
            "name": "HELLO_CONSUMER_KAFKA__EXTRA__SSL.CA.PEM",
            "valueFrom": {
                "secretKeyRef": {"name": "hello-platform-cluster-ca-cert", "key": "ca.crt"}
            },
        },
        {"name": "HELLO_CONSUMER_LOG__LEVEL", "value": "DEBUG"},
    ]
    names = {e["name"] for e in env if not e["name"].startswith("HELLO_CONSUMER_KAFKA__EXTRA__")}
    assert not unknown_env_names(names, "HELLO_CONSUMER_")


def test_pipeline_consumers_on_plaintext_kafka_get_only_the_protocol(defaults: Docs) -> None:
    env = find(defaults, "HelloPipeline")["spec"]["consumer"]["env"]

    assert env == [{"name": "HELLO_CONSUMER_KAFKA__SECURITY_PROTOCOL", "value": "PLAINTEXT"}]
