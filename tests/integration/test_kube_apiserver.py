"""Integration tests against a real kube-apiserver + etcd started by hello_dev.kube."""

from __future__ import annotations

import pathlib
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from kubernetes import client, config

from hello_dev.kube import KUBE_VERSION, KubeApiServer, KubeBinaries

# A cold build of the binaries gets a longer timeout from conftest_kube's collection hook.
pytestmark = pytest.mark.slow


def _eventually(check: Callable[[], Any], *, timeout: float = 15.0) -> Any:
    """Retry ``check`` until it stops raising (RBAC and CRD changes settle asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def admin(kube_apiserver: KubeApiServer) -> Iterator[client.ApiClient]:
    with kube_apiserver.api_client() as api:
        yield api


@pytest.fixture
def namespace(admin: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(admin).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    yield name
    # No namespace controller runs, so the namespace only moves to Terminating; that is enough.
    client.CoreV1Api(admin).delete_namespace(name)


def test_server_reports_pinned_version(
    kube_apiserver: KubeApiServer, admin: client.ApiClient
) -> None:
    info = client.VersionApi(admin).get_code()
    assert info.git_version == KUBE_VERSION
    assert info.major == "1"
    assert info.minor == KUBE_VERSION.split(".")[1]
    assert kube_apiserver.server_version() == KUBE_VERSION
    assert kube_apiserver.url.startswith("https://127.0.0.1:")


def test_anonymous_requests_are_forbidden(kube_apiserver: KubeApiServer) -> None:
    ctx = ssl.create_default_context(cafile=str(kube_apiserver.ca_cert_path))
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(f"{kube_apiserver.url}/api/v1/namespaces", timeout=5, context=ctx)
    with excinfo.value as response:
        assert response.code in (401, 403)


def test_rbac_denies_service_account_until_role_is_bound(
    kube_apiserver: KubeApiServer,
    admin: client.ApiClient,
    namespace: str,
    tmp_path: pathlib.Path,
) -> None:
    core = client.CoreV1Api(admin)
    rbac = client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="operator"))
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"k": "v"}),
    )
    kubeconfig = kube_apiserver.service_account_kubeconfig(
        namespace, "operator", tmp_path / "operator.kubeconfig"
    )
    assert kubeconfig.stat().st_mode & 0o077 == 0

    with kube_apiserver.api_client(kubeconfig) as sa_api:
        sa_core = client.CoreV1Api(sa_api)

        # Authenticated as the ServiceAccount, but nothing is granted yet.
        with pytest.raises(client.ApiException) as denied:
            sa_core.list_namespaced_config_map(namespace)
        assert denied.value.status == 403
        assert f"system:serviceaccount:{namespace}:operator" in str(denied.value.body)

        rbac.create_namespaced_role(
            namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="configmap-reader"),
                rules=[
                    client.V1PolicyRule(
                        api_groups=[""], resources=["configmaps"], verbs=["get", "list", "watch"]
                    )
                ],
            ),
        )
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="operator-reads-configmaps"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"
                ),
                subjects=[
                    client.RbacV1Subject(
                        kind="ServiceAccount", name="operator", namespace=namespace
                    )
                ],
            ),
        )

        listed = _eventually(lambda: sa_core.list_namespaced_config_map(namespace))
        assert [cm.metadata.name for cm in listed.items] == ["settings"]

        # Least privilege: still no secrets, no writes, nothing cluster-wide.
        forbidden_calls: list[Callable[[], object]] = [
            lambda: sa_core.list_namespaced_secret(namespace),
            lambda: sa_core.delete_namespaced_config_map("settings", namespace),
            lambda: sa_core.list_config_map_for_all_namespaces(),
        ]
        for forbidden in forbidden_calls:
            with pytest.raises(client.ApiException) as exc:
                forbidden()
            assert exc.value.status == 403


def test_crd_becomes_established_and_serves_custom_objects(
    admin: client.ApiClient, namespace: str
) -> None:
    group = f"{uuid.uuid4().hex[:8]}.hello.example.com"
    crd_name = f"widgets.{group}"
    ext = client.ApiextensionsV1Api(admin)
    ext.create_custom_resource_definition(
        client.V1CustomResourceDefinition(
            metadata=client.V1ObjectMeta(name=crd_name),
            spec=client.V1CustomResourceDefinitionSpec(
                group=group,
                scope="Namespaced",
                names=client.V1CustomResourceDefinitionNames(
                    plural="widgets", singular="widget", kind="Widget", list_kind="WidgetList"
                ),
                versions=[
                    # The field is `var_schema` aliased to `schema`; only `schema=` is honoured
                    # at runtime, while pydantic's mypy plugin knows only the field name.
                    client.V1CustomResourceDefinitionVersion(  # type: ignore[call-arg]
                        name="v1",
                        served=True,
                        storage=True,
                        subresources=client.V1CustomResourceSubresources(status={}),
                        schema=client.V1CustomResourceValidation(
                            open_apiv3_schema=client.V1JSONSchemaProps(
                                type="object",
                                properties={
                                    "spec": client.V1JSONSchemaProps(
                                        type="object",
                                        properties={
                                            "replicas": client.V1JSONSchemaProps(
                                                type="integer", minimum=0
                                            )
                                        },
                                    ),
                                    "status": client.V1JSONSchemaProps(
                                        type="object",
                                        x_kubernetes_preserve_unknown_fields=True,
                                    ),
                                },
                            )
                        ),
                    )
                ],
            ),
        )
    )
    try:

        def established() -> None:
            crd = ext.read_custom_resource_definition(crd_name)
            assert crd.status is not None
            conditions = {c.type: c.status for c in (crd.status.conditions or [])}
            assert conditions.get("Established") == "True", conditions
            assert conditions.get("NamesAccepted") == "True", conditions

        _eventually(established, timeout=30)

        custom = client.CustomObjectsApi(admin)
        body = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"replicas": 2},
        }
        _eventually(
            lambda: custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", body)
        )
        got = cast(
            "dict[str, Any]",
            custom.get_namespaced_custom_object(group, "v1", namespace, "widgets", "w1"),
        )
        assert got["spec"] == {"replicas": 2}

        # The structural schema is enforced by the real server.
        bad = dict(body, metadata={"name": "w2"}, spec={"replicas": -1})
        with pytest.raises(client.ApiException) as exc:
            custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", bad)
        assert exc.value.status == 422
    finally:
        ext.delete_custom_resource_definition(crd_name)


def test_cli_start_serves_until_sigterm_then_cleans_up(
    kube_binaries: KubeBinaries, tmp_path: pathlib.Path
) -> None:
    kubeconfig = tmp_path / "admin.kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hello_dev.kube", "start", "--kubeconfig-out", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("Press Ctrl-C"):
                break
        assert f"export KUBECONFIG={kubeconfig}" in lines, lines
        api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        with api:
            assert client.VersionApi(api).get_code().git_version == kube_binaries.kube_version
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert rest.strip().endswith("stopped")
        assert not kubeconfig.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
