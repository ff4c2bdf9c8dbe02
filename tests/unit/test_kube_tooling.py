"""Fast checks of hello_dev.kube that need neither Go nor a running server."""

from __future__ import annotations

import pathlib
import stat

import click
import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hello_dev import kube

FAKE_GO = """#!/bin/sh
echo "$@" >> "$FAKE_GO_LOG"
if [ "$1" = build ]; then
  out=""
  while [ $# -gt 0 ]; do
    if [ "$1" = -o ]; then out="$2"; fi
    shift
  done
  printf '#!/bin/sh\\necho fake\\n' > "$out"
  chmod +x "$out"
fi
"""

FAILING_GO = """#!/bin/sh
echo "go: k8s.io/kubernetes@v1.36.3: reading proxy: 404 Not Found" >&2
exit 3
"""


def _script(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_go_modules_pin_the_versions_the_module_expects() -> None:
    kube_mod = kube.GO_MODULES_DIR / "kube"
    assert kube._required_version(kube_mod, "k8s.io/kubernetes") == kube.KUBE_VERSION
    staging = kube.KUBE_VERSION.replace("v1.", "v0.", 1)
    go_mod = (kube_mod / "go.mod").read_text()
    assert f"k8s.io/apiserver => k8s.io/apiserver {staging}" in go_mod
    assert "tool k8s.io/kubernetes/cmd/kube-apiserver" in go_mod
    etcd_mod = kube.GO_MODULES_DIR / "etcd"
    assert kube._required_version(etcd_mod, kube.ETCD_PACKAGE) == kube.ETCD_VERSION
    for module_dir in (kube_mod, etcd_mod):
        assert (module_dir / "go.sum").stat().st_size > 0


def test_ensure_binaries_builds_once_then_uses_the_cache(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "go.log"
    monkeypatch.setenv("HELLO_GO", str(_script(tmp_path / "go", FAKE_GO)))
    monkeypatch.setenv("FAKE_GO_LOG", str(log))
    root = tmp_path / "cache"
    assert not kube.binaries_cached(root=root)

    first = kube.ensure_binaries(root=root)
    assert first.kube_apiserver == root / "kube" / kube.KUBE_VERSION / "bin" / "kube-apiserver"
    assert first.etcd == root / "etcd" / kube.ETCD_VERSION / "bin" / "etcd"
    assert first.kube_apiserver.is_file() and first.etcd.is_file()
    calls = log.read_text().splitlines()
    builds = [c for c in calls if c.startswith("build ")]
    assert len(builds) == 2
    assert all("-trimpath" in c and "-mod=readonly" in c for c in builds)
    assert f"-X k8s.io/component-base/version.gitVersion={kube.KUBE_VERSION}" in builds[0]
    assert builds[0].endswith(kube.KUBE_APISERVER_PACKAGE)
    assert builds[1].endswith(kube.ETCD_PACKAGE)
    assert kube.binaries_cached(root=root)

    second = kube.ensure_binaries(root=root)
    assert second == first
    assert log.read_text().splitlines() == calls  # go was not run again


def test_build_failure_names_the_command_and_its_output(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_GO", str(_script(tmp_path / "go", FAILING_GO)))
    with pytest.raises(kube.KubeBuildError) as excinfo:
        kube.ensure_binaries(root=tmp_path / "cache")
    message = str(excinfo.value)
    assert "go mod download (kube-apiserver) failed with exit code 3" in message
    assert "404 Not Found" in message
    assert str(kube.GO_MODULES_DIR / "kube") in message


def test_version_mismatch_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(kube.KubeBuildError, match=r"pins k8s\.io/kubernetes"):
        kube.ensure_binaries("v1.99.0", root=tmp_path)


def test_pki_admin_is_system_masters_and_serving_cert_covers_loopback(
    tmp_path: pathlib.Path,
) -> None:
    pki = kube._make_pki(tmp_path)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    serving = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(pki.admin_cert.read_bytes())
    serving.verify_directly_issued_by(ca)
    admin.verify_directly_issued_by(ca)

    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    def names(oid: x509.ObjectIdentifier) -> list[str | bytes]:
        return [a.value for a in admin.subject.get_attributes_for_oid(oid)]

    assert names(NameOID.COMMON_NAME) == ["admin"]
    assert names(NameOID.ORGANIZATION_NAME) == ["system:masters"]
    eku = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    for key in (pki.serving_key, pki.admin_key, pki.sa_key):
        assert key.stat().st_mode & 0o077 == 0


def test_write_kubeconfig_embeds_credentials(tmp_path: pathlib.Path) -> None:
    pki = kube._make_pki(tmp_path / "certs")
    path = kube.write_kubeconfig(
        tmp_path / "sa.kubeconfig",
        server="https://127.0.0.1:6443",
        ca_cert=pki.ca_cert,
        user="system:serviceaccount:ns:op",
        token="tok",
        namespace="ns",
    )
    assert path.stat().st_mode & 0o077 == 0
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "system:serviceaccount:ns:op@hello-dev"
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert config["users"][0]["user"] == {"token": "tok"}
    assert config["contexts"][0]["context"]["namespace"] == "ns"
    with pytest.raises(ValueError, match="token or a client certificate"):
        kube.write_kubeconfig(
            tmp_path / "x", server="https://127.0.0.1:1", ca_cert=pki.ca_cert, user="u"
        )


def test_cli_build_prints_the_binary_paths(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_GO", str(_script(tmp_path / "go", FAKE_GO)))
    monkeypatch.setenv("FAKE_GO_LOG", str(tmp_path / "go.log"))
    monkeypatch.setenv("HELLO_CACHE_DIR", str(tmp_path / "cache"))
    group = click.Group("hello-dev")
    kube.register(group)
    result = CliRunner().invoke(group, ["kube", "build"])
    assert result.exit_code == 0, result.output
    assert f"kube-apiserver {kube.KUBE_VERSION}: {tmp_path / 'cache'}" in result.output
    assert f"etcd {kube.ETCD_VERSION}: {tmp_path / 'cache'}" in result.output


def test_cli_build_failure_is_a_click_error(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_GO", str(_script(tmp_path / "go", FAILING_GO)))
    monkeypatch.setenv("HELLO_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(kube.kube_group, ["build"])
    assert result.exit_code == 1
    assert "go mod download (kube-apiserver) failed" in result.output
