"""A real API server, a real broker and hello-operator as a real process.

The operator runs as ``python -m hello_operator`` with a kubeconfig holding a
token of its own ServiceAccount, bound only to ``operator/deploy/rbac.yaml``,
so every test here also proves that Role is enough.

"kubectl apply -f" is done with server-side apply through the kubernetes
client's DynamicClient (there is no kubectl binary here), which is what
``kubectl apply --server-side`` sends.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import yaml
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from kubernetes import client, dynamic
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from hello_dev.kafka import KafkaCluster
from hello_dev.kube import KubeApiServer, binaries_cached
from hello_dev.ports import free_port

ROOT = pathlib.Path(__file__).resolve().parents[3]
CRDS = ROOT / "charts" / "hello-platform" / "crds"
RBAC = ROOT / "operator" / "deploy" / "rbac.yaml"
EXAMPLE = ROOT / "examples" / "hellopipeline.yaml"
GROUP, VERSION, PLURAL = "hello-platform.dev", "v1alpha1", "hellopipelines"

T = TypeVar("T")


def eventually(
    check: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.25, what: str = ""
) -> T:
    """Call ``check`` until it returns a truthy value without raising; return that value."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (
            AssertionError,
            client.ApiException,
            KafkaException,
            KeyError,
            TypeError,
            ResourceNotFoundError,  # a new CRD not yet in discovery
        ) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout:.0f}s: {what or check}; last error: {last!r}")


def load_yaml(path: pathlib.Path, *, namespace: str | None = None) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    if namespace is not None:
        for doc in docs:
            if "namespace" in doc.get("metadata", {}):
                doc["metadata"]["namespace"] = namespace
            for subject in doc.get("subjects", ()):
                subject["namespace"] = namespace
    return docs


def apply(api: client.ApiClient, docs: list[dict[str, Any]]) -> None:
    """kubectl apply --server-side -f, for already-loaded documents."""
    dyn = dynamic.DynamicClient(api)
    for doc in docs:
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        dyn.server_side_apply(
            resource,
            body=doc,
            name=doc["metadata"]["name"],
            namespace=doc["metadata"].get("namespace"),
            field_manager="kubectl",
            force_conflicts=True,
        )


@pytest.fixture(scope="session")
def admin(kube_apiserver: KubeApiServer) -> Iterator[client.ApiClient]:
    with kube_apiserver.api_client() as api:
        yield api


@pytest.fixture(scope="session")
def crds(admin: client.ApiClient) -> None:
    for path in sorted(CRDS.glob("*.yaml")):
        apply(admin, load_yaml(path))
    ext = client.ApiextensionsV1Api(admin)

    def established() -> bool:
        names = [d["metadata"]["name"] for p in CRDS.glob("*.yaml") for d in load_yaml(p)]
        for name in names:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    eventually(established, timeout=30, what="CRDs established")
    # Discovery of a new group lags a little behind Established.
    eventually(
        lambda: dynamic.DynamicClient(admin).resources.get(
            api_version=f"{GROUP}/{VERSION}", kind="HelloPipeline"
        ),
        timeout=30,
        what="HelloPipeline discoverable",
    )


@pytest.fixture
def namespace(admin: client.ApiClient, crds: None) -> Iterator[str]:
    name = f"op-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(admin).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    yield name
    # No namespace controller runs; Terminating is as far as it gets, which is enough.
    with contextlib.suppress(client.ApiException):
        client.CoreV1Api(admin).delete_namespace(name)


@pytest.fixture
def operator_kubeconfig(
    kube_apiserver: KubeApiServer,
    admin: client.ApiClient,
    namespace: str,
    tmp_path: pathlib.Path,
) -> pathlib.Path:
    """RBAC from operator/deploy/rbac.yaml in ``namespace``, and a kubeconfig of its SA."""
    apply(admin, load_yaml(RBAC, namespace=namespace))
    return kube_apiserver.service_account_kubeconfig(
        namespace, "hello-operator", tmp_path / "operator.kubeconfig"
    )


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log_path: pathlib.Path
    metrics_port: int
    stopped: bool = False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, *, kill: bool = False) -> None:
        self.stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def start_operator(
    operator_kubeconfig: pathlib.Path,
    namespace: str,
    kafka: KafkaCluster,
    tmp_path: pathlib.Path,
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start ``python -m hello_operator`` as the operator's ServiceAccount."""
    started: list[OperatorProcess] = []

    def start(*, bootstrap: str | None = None, priority: int | None = None) -> OperatorProcess:
        metrics_port = free_port()
        log_path = tmp_path / f"operator-{len(started)}.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HELLO_", "KUBERNETES_")) and k != "KUBECONFIG"
        }
        env.update(
            {
                "KUBECONFIG": str(operator_kubeconfig),
                "HELLO_OPERATOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap or kafka.bootstrap_servers,
                "HELLO_OPERATOR_NAMESPACES": json.dumps([namespace]),
                "HELLO_OPERATOR_METRICS_PORT": str(metrics_port),
                "HELLO_OPERATOR_HEALTH_PORT": str(free_port()),
                "HELLO_OPERATOR_KAFKA_TIMEOUT_SECONDS": "2",
                "HELLO_OPERATOR_LOG__LEVEL": "DEBUG",
            }
        )
        if priority is not None:
            env["HELLO_OPERATOR_PRIORITY"] = str(priority)
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "hello_operator"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )
        operator = OperatorProcess(process, log_path, metrics_port)
        started.append(operator)
        return operator

    yield start
    crashed = [
        (op.log_path, op.process.returncode)
        for op in started
        if not op.stopped and op.process.poll() is not None
    ]
    for operator in started:
        operator.stop()
    if crashed:
        # An operator that died on its own is a failure whatever the test saw.
        pytest.fail(f"operator exited by itself: {crashed}")


def commit_offsets(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Move the group's committed offsets, as a consumer that processed them would.

    A fresh broker may still be loading __consumer_offsets; the per-partition
    errors say so without raising, hence the check and the retry.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p, o) for p, o in offsets.items()]
    )

    def commit() -> bool:
        for future in admin.alter_consumer_group_offsets([request]).values():
            result = future.result(timeout=30)
            errors = [tp.error for tp in result.topic_partitions if tp.error is not None]
            assert not errors, errors
        return True

    eventually(commit, timeout=30, interval=0.5, what=f"commit {offsets} for {group}")


def pipeline(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HelloPipeline",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def read_pipeline(admin: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(admin).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return found


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (body.get("status") or {}).get("conditions") or ():
        if cond["type"] == kind:
            return dict(cond)
    return {}


def deployment_replicas(admin: client.ApiClient, namespace: str, name: str) -> int | None:
    try:
        found = client.AppsV1Api(admin).read_namespaced_deployment(f"{name}-consumer", namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    replicas: int = found.spec.replicas
    return replicas


def events(admin: client.ApiClient, namespace: str, name: str) -> list[client.CoreV1Event]:
    found = client.CoreV1Api(admin).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return sorted(found.items, key=lambda e: e.metadata.creation_timestamp)


def timeout_for_session() -> int:
    """Test timeouts that leave room for building kube-apiserver on a cold cache."""
    return 600 if binaries_cached() else 3600
