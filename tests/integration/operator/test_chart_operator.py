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
    out = subprocess.run(
        [str(ensure_helm()), "template", "rel", str(CHART), "--namespace", "shop"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
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
