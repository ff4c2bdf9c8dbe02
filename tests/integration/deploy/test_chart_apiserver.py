"""Rendered chart objects, dry-run applied to a real kube-apiserver.

``helm template`` proves the templates render; this proves the API server
accepts what they render: server-side apply with ``dryRun=All`` and strict
field validation, so a misspelt field or a wrong type is an error rather
than something silently dropped. The HelloPipeline CRD from the chart is
installed for real first, so pipelines are checked against its schema and
CEL rules. Strimzi kinds are left out: their CRDs are not available here.
"""

from __future__ import annotations

import copy
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import dynamic
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from hello_dev.helm import ensure_helm
from tests.deploy_contract import CHART

pytestmark = pytest.mark.slow

RELEASE = "hello-platform"
STRIMZI_GROUP = "kafka.strimzi.io/"
FIELD_MANAGER = "chart-dry-run-test"

# Strimzi is off so no Kafka kinds are rendered; the other switches turn on
# every optional object so all of them meet the API server.
EVERYTHING_ON = (
    "kafka.strimzi.enabled=false",
    "kafka.bootstrapServers=kafka.example.test:9092",
    "api.ingress.enabled=true",
    "api.ingress.tls.enabled=true",
    "api.autoscaling.enabled=true",
    "kafka.securityProtocol=SASL_SSL",
    "kafka.sasl.mechanism=SCRAM-SHA-512",
    "kafka.sasl.username=hello",
    "kafka.sasl.passwordSecret.name=hello-kafka-user",
    "kafka.tls.caSecret.name=hello-kafka-ca",
)


def _render(namespace: str, *sets: str) -> list[dict[str, Any]]:
    args = [str(ensure_helm()), "template", RELEASE, str(CHART), "--namespace", namespace]
    for item in sets:
        args += ["--set", item]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def dyn(kube_apiserver: Any) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(kube_apiserver.api_client())  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def namespace(dyn: dynamic.DynamicClient) -> Iterator[str]:
    name = f"chart-{uuid.uuid4().hex[:8]}"
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    namespaces.delete(name=name)


@pytest.fixture(scope="module")
def crd_installed(dyn: dynamic.DynamicClient) -> None:
    """Every CRD the chart ships (HelloPipeline, KopfPeering), Established."""
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    names = []
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if crd:
                crds.server_side_apply(body=crd, field_manager=FIELD_MANAGER, force_conflicts=True)
                names.append(crd["metadata"]["name"])

    # The API server serves the new kinds once their CRDs report Established.
    deadline = time.monotonic() + 30
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            status = crds.get(name=name).to_dict().get("status") or {}
            if any(
                c["type"] == "Established" and c["status"] == "True"
                for c in status.get("conditions") or []
            ):
                pending.discard(name)
        time.sleep(0.2)
    if pending:
        pytest.fail(f"CRDs not Established within 30 s: {sorted(pending)}")
    # Discovery of a new group lags a little behind Established.
    kinds = [
        (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
        for path in sorted((CHART / "crds").glob("*.yaml"))
        for crd in yaml.safe_load_all(path.read_text())
        if crd
        for version in crd["spec"]["versions"]
        if version.get("served", True)
    ]
    while kinds and time.monotonic() < deadline + 30:
        dyn.resources.invalidate_cache()
        try:
            for api_version, kind in kinds:
                dyn.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            time.sleep(0.2)
            continue
        break
    else:
        pytest.fail(f"CRD kinds not discoverable within 60 s: {kinds}")


def _dry_run_apply(dyn: dynamic.DynamicClient, doc: dict[str, Any], namespace: str) -> None:
    resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    resource.server_side_apply(
        body=doc,
        namespace=namespace if resource.namespaced else None,
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
        dry_run="All",
        query_params=[("fieldValidation", "Strict")],
    )


def _apply_all(dyn: dynamic.DynamicClient, docs: list[dict[str, Any]], namespace: str) -> None:
    refused = []
    for doc in docs:
        if doc["apiVersion"].startswith(STRIMZI_GROUP):
            continue
        try:
            _dry_run_apply(dyn, doc, namespace)
        except ApiException as exc:
            refused.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.body}")
    assert not refused, "\n".join(refused)


@pytest.mark.usefixtures("crd_installed")
def test_api_server_accepts_every_object_with_all_options_on(
    dyn: dynamic.DynamicClient, namespace: str
) -> None:
    docs = _render(namespace, *EVERYTHING_ON)
    kinds = {d["kind"] for d in docs}

    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "HelloPipeline"} <= kinds
    _apply_all(dyn, docs, namespace)


@pytest.mark.usefixtures("crd_installed")
def test_api_server_accepts_the_chart_rendered_consumer(
    dyn: dynamic.DynamicClient, namespace: str
) -> None:
    docs = _render(namespace, "pipeline.enabled=false", *EVERYTHING_ON[:2])

    assert any(
        d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-consumer") for d in docs
    )
    _apply_all(dyn, docs, namespace)


@pytest.mark.usefixtures("crd_installed")
def test_strict_validation_refuses_a_misspelt_field(
    dyn: dynamic.DynamicClient, namespace: str
) -> None:
    # Control: shows the checks above would catch a typo in a template.
    (deployment,) = [
        d
        for d in _render(namespace, *EVERYTHING_ON[:2])
        if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{RELEASE}-api"
    ]
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}

    with pytest.raises(ApiException) as caught:
        _dry_run_apply(dyn, broken, namespace)

    # Server-side apply reports unknown fields while building the typed patch.
    assert "readinesProbe: field not declared in schema" in str(caught.value.body)


@pytest.mark.usefixtures("crd_installed")
def test_crd_rules_refuse_a_pipeline_reading_its_own_output_topic(
    dyn: dynamic.DynamicClient, namespace: str
) -> None:
    docs = _render(namespace, *EVERYTHING_ON[:2], "kafka.topics.output.name=default-topic")
    (pipeline,) = [d for d in docs if d["kind"] == "HelloPipeline"]

    with pytest.raises(ApiException) as caught:
        _dry_run_apply(dyn, pipeline, namespace)

    assert "topic must differ from outputTopic" in str(caught.value.body)
