"""``hello-operator`` without a Kubernetes configuration: one line and exit 2, not kopf retrying."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from hello_core.errors import ConfigError
from hello_operator.__main__ import check_kube_config

# No in-cluster service account, no kubeconfig of the machine's user.
CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("HELLO_", "KUBERNETES_")) and k != "KUBECONFIG"
}


def run_operator(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hello_operator"],
        env={
            **CLEAN_ENV,
            "HELLO_OPERATOR_STANDALONE": "true",
            "HELLO_OPERATOR_METRICS_PORT": "0",
            "HELLO_OPERATOR_HEALTH_PORT": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_missing_kubeconfig_is_one_line_and_exit_2(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nonexistent"
    result = run_operator({"KUBECONFIG": str(missing), "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr == (
        "hello-operator: no Kubernetes configuration: tried the in-cluster service account "
        "(Service host/port is not set) and the kubeconfig in KUBECONFIG "
        f"({missing}: no such file)\n"
    )
    assert result.stdout == ""


def test_without_kubeconfig_the_default_file_is_named(tmp_path: pathlib.Path) -> None:
    result = run_operator({"HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr == (
        "hello-operator: no Kubernetes configuration: tried the in-cluster service account "
        "(Service host/port is not set) and the kubeconfig ~/.kube/config, KUBECONFIG being "
        f"unset ({tmp_path}/.kube/config: no such file)\n"
    )


def test_bad_settings_are_still_reported_first(tmp_path: pathlib.Path) -> None:
    result = run_operator(
        {
            "KUBECONFIG": str(tmp_path / "nonexistent"),
            "HOME": str(tmp_path),
            "HELLO_OPERATOR_KAFKA_TIMEOUT_SECONDS": "0",
        }
    )
    assert result.returncode == 2
    assert result.stderr.startswith("hello-operator: invalid settings: ")
    assert "HELLO_OPERATOR_KAFKA_TIMEOUT_SECONDS" in result.stderr
    assert "Kubernetes" not in result.stderr


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
"""


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_a_readable_kubeconfig_passes(
    monkeypatch: pytest.MonkeyPatch, no_cluster: pathlib.Path
) -> None:
    path = no_cluster / "config"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    check_kube_config()


def test_an_unusable_kubeconfig_gives_the_library_reason(
    monkeypatch: pytest.MonkeyPatch, no_cluster: pathlib.Path
) -> None:
    path = no_cluster / "config"
    path.write_text(KUBECONFIG.replace("current-context: x", "current-context: nope"))
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(ConfigError) as raised:
        check_kube_config()
    message = str(raised.value)
    assert message.startswith(
        "no Kubernetes configuration: tried the in-cluster service account "
        "(Service host/port is not set) and the kubeconfig in KUBECONFIG "
        f"({path}: "
    )
    assert "nope" in message
    assert "\n" not in message


def test_a_kubeconfig_that_is_not_yaml_is_reported(
    monkeypatch: pytest.MonkeyPatch, no_cluster: pathlib.Path
) -> None:
    path = no_cluster / "config"
    path.write_text("clusters: [\n")
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(ConfigError, match="no Kubernetes configuration") as raised:
        check_kube_config()
    assert "\n" not in str(raised.value)
