"""The chart's operator objects agree with the plain manifests and the settings."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml

from hello_dev.helm import ensure_helm
from hello_operator.settings import OperatorSettings
from tests.integration.operator.conftest import RBAC, ROOT, load_yaml

CHART = ROOT / "charts" / "hello-platform"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render()


def render(*sets: str) -> list[dict[str, Any]]:
    args = [str(ensure_helm()), "template", "rel", str(CHART), "--namespace", "shop"]
    for item in sets:
        args += ["--set", item]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_chart_role_grants_exactly_the_plain_manifest_rules(rendered: list[dict[str, Any]]) -> None:
    (plain,) = [d for d in load_yaml(RBAC) if d["kind"] == "Role"]
    chart = one(rendered, "Role", "rel-hello-platform-operator")
    assert chart["rules"] == plain["rules"]


def test_operator_watches_the_release_namespace_with_its_own_peering(
    rendered: list[dict[str, Any]],
) -> None:
    deployment = one(rendered, "Deployment", "rel-hello-platform-operator")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert json.loads(env["HELLO_OPERATOR_NAMESPACES"]) == ["shop"]
    peering = one(rendered, "KopfPeering", env["HELLO_OPERATOR_PEERING_NAME"])
    assert peering["apiVersion"] == "zalando.org/v1"
    binding = one(rendered, "RoleBinding", "rel-hello-platform-operator")
    (subject,) = binding["subjects"]
    assert subject["name"] == deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert container["command"] == ["hello-operator"]
    assert container["livenessProbe"]["httpGet"]["port"] == "health"


def test_every_operator_env_var_is_a_setting_it_reads(rendered: list[dict[str, Any]]) -> None:
    deployment = one(rendered, "Deployment", "rel-hello-platform-operator")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    fields = set(OperatorSettings.model_fields)
    # Telemetry is shared chart plumbing; the operator exports no traces.
    names = {e["name"] for e in container["env"]} - {"HELLO_OPERATOR_TELEMETRY__TRACES_EXPORTER"}
    unknown = [
        name
        for name in names
        if name.removeprefix("HELLO_OPERATOR_").split("__")[0].lower() not in fields
    ]
    assert not unknown


def test_operator_gets_the_kafka_security_settings_it_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = render(
        "kafka.bootstrapServers=main-kafka-bootstrap:9093",
        "kafka.securityProtocol=SASL_SSL",
        "kafka.sasl.mechanism=SCRAM-SHA-512",
        "kafka.sasl.username=hello-operator",
        "kafka.sasl.passwordSecret.name=hello-operator-kafka",
        "kafka.tls.caSecret.name=main-cluster-ca-cert",
    )
    deployment = one(docs, "Deployment", "rel-hello-platform-operator")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HELLO_OPERATOR_KAFKA__SASL_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "hello-operator-kafka", "key": "password"}
    }
    ca = env["HELLO_OPERATOR_KAFKA__SSL_CA_LOCATION"]["value"]
    assert ca == "/etc/hello-platform/kafka-ca/ca.crt"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "kafka-ca"]
    assert volume["secret"]["secretName"] == "main-cluster-ca-cert"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "kafka-ca"]
    assert mount["mountPath"] == ca.rsplit("/", 1)[0]

    # What the operator makes of those variables (the Secret's value stands in).
    for name, item in env.items():
        if name.startswith("HELLO_OPERATOR_KAFKA__"):
            monkeypatch.setenv(name, item.get("value", "from-the-secret"))
    kafka = OperatorSettings().kafka
    assert (kafka.bootstrap_servers, kafka.security_protocol) == (
        "main-kafka-bootstrap:9093",
        "SASL_SSL",
    )
    assert (kafka.sasl_mechanism, kafka.sasl_username) == ("SCRAM-SHA-512", "hello-operator")
    assert kafka.sasl_password is not None
    assert kafka.sasl_password.get_secret_value() == "from-the-secret"
    assert kafka.ssl_ca_location == ca
