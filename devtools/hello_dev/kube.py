"""A real Kubernetes API server (kube-apiserver + etcd) on 127.0.0.1, built from Go modules.

Nothing is downloaded as a prebuilt binary: the pinned tools modules in ``devtools/go/kube`` and
``devtools/go/etcd`` are built with the local Go toolchain from the Go module proxy, and the
binaries are cached outside the repository::

    <cache>/kube/<kube version>/bin/kube-apiserver
    <cache>/etcd/<etcd version>/bin/etcd
    <cache>/go/mod, <cache>/go/build      (GOMODCACHE / GOCACHE unless already set)

where ``<cache>`` is :func:`hello_dev.paths.cache_dir` (``$HELLO_CACHE_DIR`` or
``~/.cache/hello-platform``).

Typical use::

    binaries = ensure_binaries()
    with KubeApiServer(binaries) as server:
        print(server.kubeconfig_path, server.url)
        server.service_account_kubeconfig("ns", "operator", tmp / "operator.kubeconfig")

The API server runs with client-certificate authentication (admin = CN=admin, O=system:masters),
ServiceAccount tokens (TokenRequest API) and ``--authorization-mode=RBAC``. No controllers,
scheduler or kubelet run: objects are stored and served, but nothing reconciles them.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import datetime
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import pathlib
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

import click

from hello_dev.gotools import build_lock, find_go, go_env
from hello_dev.paths import cache_dir
from hello_dev.ports import free_port

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

logger = logging.getLogger(__name__)

KUBE_VERSION = "v1.36.3"
"""k8s.io/kubernetes version pinned in devtools/go/kube/go.mod (staging modules at v0.36.3)."""
ETCD_VERSION = "v3.6.14"
"""go.etcd.io/etcd/server/v3 version pinned in devtools/go/etcd/go.mod."""

KUBE_APISERVER_PACKAGE = "k8s.io/kubernetes/cmd/kube-apiserver"
ETCD_PACKAGE = "go.etcd.io/etcd/server/v3"

GO_MODULES_DIR = pathlib.Path(__file__).resolve().parent.parent / "go"
"""``devtools/go``: holds the ``kube`` and ``etcd`` tools modules (go.mod + go.sum)."""

DEFAULT_BUILD_TIMEOUT = 3600.0
DEFAULT_START_TIMEOUT = 90.0
DEFAULT_STOP_TIMEOUT = 15.0
_LOG_TAIL_LINES = 40
_HEARTBEAT_SECONDS = 60.0
_START_ATTEMPTS = 3


class KubeError(RuntimeError):
    """Base class for errors raised by this module."""


class KubeBuildError(KubeError):
    """Building or locating the binaries failed."""


class KubeStartError(KubeError):
    """etcd or kube-apiserver did not start or did not become ready."""


# --------------------------------------------------------------------------------------------
# Building the binaries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KubeBinaries:
    """Paths of the built binaries and the versions they were built from."""

    kube_apiserver: pathlib.Path
    etcd: pathlib.Path
    kube_version: str
    etcd_version: str


@dataclass(frozen=True)
class _BuildSpec:
    name: str
    package: str
    version: str
    module_dir: pathlib.Path
    output: pathlib.Path
    ldflags: str


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _file_tail(path: pathlib.Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return _tail(data, lines)


def _required_version(module_dir: pathlib.Path, module: str) -> str:
    """The version of ``module`` that ``module_dir/go.mod`` requires."""
    go_mod = module_dir / "go.mod"
    try:
        text = go_mod.read_text(encoding="utf-8")
    except OSError as exc:
        raise KubeBuildError(f"cannot read {go_mod}: {exc}") from exc
    for raw in text.splitlines():
        parts = raw.split("//", 1)[0].split()
        if parts[:1] == ["require"]:
            parts = parts[1:]
        if len(parts) == 2 and parts[0] == module:
            return parts[1]
    raise KubeBuildError(f"{go_mod} does not require {module}")


def _stamp_for(spec: _BuildSpec) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((spec.module_dir / name).read_bytes())
    digest.update(spec.package.encode())
    digest.update(spec.ldflags.encode())
    return digest.hexdigest()


def _run_logged(
    cmd: Sequence[str], *, cwd: pathlib.Path, env: dict[str, str], timeout: float, what: str
) -> None:
    """Run ``cmd``; log a heartbeat while it runs; raise KubeBuildError with stderr tail."""
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as err:
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=env, stdout=err, stderr=subprocess.STDOUT, text=True
        )
        try:
            while True:
                try:
                    proc.wait(timeout=_HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - started
                    if elapsed > timeout:
                        err.seek(0)
                        raise KubeBuildError(
                            f"{what} timed out after {elapsed:.0f}s: {' '.join(cmd)} "
                            f"(cwd={cwd})\n--- output tail ---\n{_tail(err.read())}"
                        ) from None
                    logger.info("kube build still running what=%s elapsed_s=%.0f", what, elapsed)
        finally:
            # Also on KeyboardInterrupt or a test timeout: never leave a go build behind.
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        output = err.read()
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise KubeBuildError(
            f"{what} failed with exit code {proc.returncode} after {elapsed:.0f}s: "
            f"{' '.join(cmd)} (cwd={cwd})\n--- output tail ---\n{_tail(output)}"
        )
    logger.info("kube build step done what=%s elapsed_s=%.1f", what, elapsed)


def _build_one(spec: _BuildSpec, *, go: str, env: dict[str, str], timeout: float) -> None:
    stamp = _stamp_for(spec)
    spec.output.parent.mkdir(parents=True, exist_ok=True)
    logger.info(
        "kube binary build start name=%s version=%s module_dir=%s gocache=%s "
        "(cold: about 6 min on 2 cores)",
        spec.name,
        spec.version,
        spec.module_dir,
        env["GOCACHE"],
    )
    started = time.monotonic()
    _run_logged(
        [go, "mod", "download"],
        cwd=spec.module_dir,
        env=env,
        timeout=timeout,
        what=f"go mod download ({spec.name})",
    )
    tmp_output = spec.output.with_name(f".{spec.output.name}.{os.getpid()}.tmp")
    cmd = [
        go,
        "build",
        "-p",
        str(min(2, os.cpu_count() or 1)),
        "-mod=readonly",
        "-trimpath",
        "-buildvcs=false",
        "-ldflags",
        spec.ldflags,
        "-o",
        str(tmp_output),
        spec.package,
    ]
    try:
        _run_logged(
            cmd, cwd=spec.module_dir, env=env, timeout=timeout, what=f"go build ({spec.name})"
        )
        os.replace(tmp_output, spec.output)
    finally:
        tmp_output.unlink(missing_ok=True)
    _stamp_path(spec).write_text(
        json.dumps({"stamp": stamp, "version": spec.version, "package": spec.package}) + "\n",
        encoding="utf-8",
    )
    logger.info(
        "kube binary build done name=%s version=%s elapsed_s=%.0f size_mb=%.1f path=%s",
        spec.name,
        spec.version,
        time.monotonic() - started,
        spec.output.stat().st_size / 1e6,
        spec.output,
    )


def _build_specs(version: str, etcd_version: str, root: pathlib.Path) -> list[_BuildSpec]:
    """What to build, checked against the versions the committed tools modules pin."""
    kube_dir = GO_MODULES_DIR / "kube"
    etcd_dir = GO_MODULES_DIR / "etcd"
    for module_dir, module, wanted in (
        (kube_dir, "k8s.io/kubernetes", version),
        (etcd_dir, ETCD_PACKAGE, etcd_version),
    ):
        pinned = _required_version(module_dir, module)
        if pinned != wanted:
            raise KubeBuildError(
                f"{module_dir / 'go.mod'} pins {module} {pinned}, not {wanted}; "
                "update the tools module (see devtools/README.md) to change versions"
            )
    minor = version.lstrip("v").split(".")[1]
    kube_ldflags = " ".join(
        [
            "-s",
            "-w",
            f"-X k8s.io/component-base/version.gitVersion={version}",
            "-X k8s.io/component-base/version.gitMajor=1",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
            "-X k8s.io/component-base/version.gitTreeState=clean",
        ]
    )
    return [
        _BuildSpec(
            name="kube-apiserver",
            package=KUBE_APISERVER_PACKAGE,
            version=version,
            module_dir=kube_dir,
            output=root / "kube" / version / "bin" / "kube-apiserver",
            ldflags=kube_ldflags,
        ),
        _BuildSpec(
            name="etcd",
            package=ETCD_PACKAGE,
            version=etcd_version,
            module_dir=etcd_dir,
            output=root / "etcd" / etcd_version / "bin" / "etcd",
            ldflags="-s -w",
        ),
    ]


def ensure_binaries(
    version: str = KUBE_VERSION,
    etcd_version: str = ETCD_VERSION,
    *,
    root: pathlib.Path | None = None,
    timeout: float = DEFAULT_BUILD_TIMEOUT,
) -> KubeBinaries:
    """Return the cached kube-apiserver and etcd binaries, building them first if needed.

    ``version`` and ``etcd_version`` must match what the committed tools modules pin (bump the
    go.mod files to change them). The build is skipped when a binary built from the same
    go.mod/go.sum exists in the cache. Raises :class:`KubeBuildError` naming the failing command
    with the tail of its output.
    """
    root = root if root is not None else cache_dir()
    specs = _build_specs(version, etcd_version, root)
    with build_lock(root / "kube" / ".build.lock", what="kube-apiserver and etcd"):
        go: str | None = None
        for spec in specs:
            if _is_cached(spec):
                logger.info(
                    "kube binary cached name=%s version=%s path=%s",
                    spec.name,
                    spec.version,
                    spec.output,
                )
                continue
            go = go or find_go(needed_for="kube-apiserver and etcd", error=KubeBuildError)
            _build_one(spec, go=go, env=go_env(root), timeout=timeout)
    return KubeBinaries(
        kube_apiserver=specs[0].output,
        etcd=specs[1].output,
        kube_version=version,
        etcd_version=etcd_version,
    )


def binaries_cached(
    version: str = KUBE_VERSION,
    etcd_version: str = ETCD_VERSION,
    *,
    root: pathlib.Path | None = None,
) -> bool:
    """True when :func:`ensure_binaries` would not need to build anything."""
    try:
        specs = _build_specs(version, etcd_version, root if root is not None else cache_dir())
    except KubeBuildError:
        return False
    return all(_is_cached(spec) for spec in specs)


def _stamp_path(spec: _BuildSpec) -> pathlib.Path:
    return spec.output.with_name(spec.output.name + ".stamp")


def _is_cached(spec: _BuildSpec) -> bool:
    """True when the binary exists and was built from the current go.mod/go.sum and flags."""
    stamp_path = _stamp_path(spec)
    if not (spec.output.is_file() and stamp_path.is_file()):
        return False
    try:
        recorded = json.loads(stamp_path.read_text(encoding="utf-8")).get("stamp")
    except (OSError, ValueError):
        return False
    return bool(recorded == _stamp_for(spec))


# --------------------------------------------------------------------------------------------
# Certificates and kubeconfigs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pki:
    ca_cert: pathlib.Path
    serving_cert: pathlib.Path
    serving_key: pathlib.Path
    admin_cert: pathlib.Path
    admin_key: pathlib.Path
    sa_key: pathlib.Path
    sa_pub: pathlib.Path


def _write_private(path: pathlib.Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _make_pki(cert_dir: pathlib.Path) -> _Pki:
    """A throw-away CA, a serving cert for 127.0.0.1/localhost, an admin client cert and an
    RSA key pair for signing ServiceAccount tokens."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    cert_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=7)

    def pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hello-dev-kube-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName] | None
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    serving, serving_key = leaf(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        ],
    )
    admin, admin_key = leaf(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
            ]
        ),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        None,
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    pki = _Pki(
        ca_cert=cert_dir / "ca.crt",
        serving_cert=cert_dir / "apiserver.crt",
        serving_key=cert_dir / "apiserver.key",
        admin_cert=cert_dir / "admin.crt",
        admin_key=cert_dir / "admin.key",
        sa_key=cert_dir / "sa.key",
        sa_pub=cert_dir / "sa.pub",
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    _write_private(pki.serving_key, pem_key(serving_key))
    pki.admin_cert.write_bytes(admin.public_bytes(serialization.Encoding.PEM))
    _write_private(pki.admin_key, pem_key(admin_key))
    _write_private(pki.sa_key, pem_key(sa_key))
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def _b64(path: pathlib.Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def write_kubeconfig(
    path: pathlib.Path,
    *,
    server: str,
    ca_cert: pathlib.Path,
    user: str,
    token: str | None = None,
    client_cert: pathlib.Path | None = None,
    client_key: pathlib.Path | None = None,
    namespace: str | None = None,
    cluster: str = "hello-dev",
) -> pathlib.Path:
    """Write a self-contained kubeconfig (all credentials embedded, mode 0600)."""
    import yaml

    user_entry: dict[str, str] = {}
    if token is not None:
        user_entry["token"] = token
    if client_cert is not None and client_key is not None:
        user_entry["client-certificate-data"] = _b64(client_cert)
        user_entry["client-key-data"] = _b64(client_key)
    if not user_entry:
        raise ValueError("write_kubeconfig needs a token or a client certificate and key")
    context: dict[str, str] = {"cluster": cluster, "user": user}
    if namespace is not None:
        context["namespace"] = namespace
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": f"{user}@{cluster}", "context": context}],
        "current-context": f"{user}@{cluster}",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode("utf-8"))
    return path


# --------------------------------------------------------------------------------------------
# Running etcd + kube-apiserver
# --------------------------------------------------------------------------------------------


def _stop_process(proc: subprocess.Popen[bytes], name: str, timeout: float) -> None:
    if proc.poll() is not None:
        logger.info(
            "kube process already exited name=%s pid=%d rc=%s", name, proc.pid, proc.returncode
        )
        return
    logger.info("kube process stopping name=%s pid=%d signal=SIGTERM", name, proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        logger.warning(
            "kube process did not exit name=%s pid=%d timeout_s=%.0f signal=SIGKILL",
            name,
            proc.pid,
            timeout,
        )
        proc.kill()
        proc.wait()
    logger.info("kube process stopped name=%s pid=%d rc=%s", name, proc.pid, proc.returncode)


def _loopback_get(
    port: int, path: str, *, context: ssl.SSLContext | None, timeout: float
) -> tuple[int, str]:
    """GET ``path`` from 127.0.0.1:``port`` (HTTPS when ``context`` is given)."""
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", errors="replace")
    finally:
        conn.close()


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, have the kernel SIGTERM a child when this process dies without running
    ``stop()`` (e.g. SIGKILL or SIGTERM of pytest). Only from the main thread: the signal
    fires when the *thread* that started the child exits."""
    if (
        not sys.platform.startswith("linux")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_pdeathsig() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)

    return set_pdeathsig


class KubeApiServer:
    """etcd + kube-apiserver on free 127.0.0.1 ports in a temporary directory.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. After start:
    ``kubeconfig_path`` is an admin kubeconfig (client cert CN=admin, O=system:masters) and
    ``url`` is ``https://127.0.0.1:<port>``.
    """

    def __init__(
        self,
        binaries: KubeBinaries | None = None,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        extra_apiserver_args: Sequence[str] = (),
        keep_workdir: bool = False,
        workdir_parent: pathlib.Path | None = None,
    ) -> None:
        self._binaries = binaries
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.keep_workdir = keep_workdir
        self._workdir_parent = workdir_parent
        self._workdir: pathlib.Path | None = None
        self._pki: _Pki | None = None
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._log_files: list[IO[bytes]] = []
        self._port: int | None = None
        self._lock = threading.Lock()

    # -- properties ---------------------------------------------------------------------------

    @property
    def binaries(self) -> KubeBinaries:
        if self._binaries is None:
            self._binaries = ensure_binaries()
        return self._binaries

    @property
    def workdir(self) -> pathlib.Path:
        if self._workdir is None:
            raise KubeError("KubeApiServer is not started")
        return self._workdir

    @property
    def url(self) -> str:
        if self._port is None:
            raise KubeError("KubeApiServer is not started")
        return f"https://127.0.0.1:{self._port}"

    @property
    def kubeconfig_path(self) -> pathlib.Path:
        return self.workdir / "kubeconfig"

    @property
    def ca_cert_path(self) -> pathlib.Path:
        return self._require_pki().ca_cert

    @property
    def apiserver_log_path(self) -> pathlib.Path:
        return self.workdir / "kube-apiserver.log"

    @property
    def etcd_log_path(self) -> pathlib.Path:
        return self.workdir / "etcd.log"

    @property
    def running(self) -> bool:
        procs = (self._etcd, self._apiserver)
        return all(p is not None and p.poll() is None for p in procs)

    def _require_pki(self) -> _Pki:
        if self._pki is None:
            raise KubeError("KubeApiServer is not started")
        return self._pki

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> KubeApiServer:
        """Start etcd and kube-apiserver; return once ``/readyz`` answers ok.

        Ports are picked free just before use; if another process grabs one in between, the
        start is retried on new ports (up to three attempts)."""
        binaries = self.binaries
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._make_workdir()
            try:
                self._start(binaries)
                return self
            except KubeStartError as exc:
                self.stop()
                if "address already in use" not in str(exc) or attempt == _START_ATTEMPTS:
                    raise
                logger.warning("kube start retry reason=port_in_use attempt=%d", attempt)
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _make_workdir(self) -> None:
        with self._lock:
            if self._workdir is not None:
                raise KubeError("KubeApiServer is already started")
            parent = self._workdir_parent
            if parent is not None:
                parent.mkdir(parents=True, exist_ok=True)
            self._workdir = pathlib.Path(
                tempfile.mkdtemp(prefix="hello-kube-", dir=str(parent) if parent else None)
            )
            atexit.register(self.stop)

    def _start(self, binaries: KubeBinaries) -> None:
        started = time.monotonic()
        workdir = self.workdir
        self._pki = pki = _make_pki(workdir / "certs")
        deadline = started + self.start_timeout

        etcd_client_port = free_port()
        etcd_peer_port = free_port()
        while etcd_peer_port == etcd_client_port:
            etcd_peer_port = free_port()
        etcd_url = f"http://127.0.0.1:{etcd_client_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer_port}"
        etcd_cmd = [
            str(binaries.etcd),
            "--name=hello-dev",
            f"--data-dir={workdir / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=hello-dev={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]
        self._etcd = self._spawn("etcd", etcd_cmd, self.etcd_log_path)
        self._wait_http(
            "etcd",
            etcd_client_port,
            "/health",
            deadline=deadline,
            proc=self._etcd,
            log_path=self.etcd_log_path,
            context=None,
            ok=lambda body: '"health":"true"' in body.replace(" ", ""),
        )
        logger.info("kube etcd ready url=%s elapsed_s=%.1f", etcd_url, time.monotonic() - started)

        self._port = port = free_port()
        while port in (etcd_client_port, etcd_peer_port):
            self._port = port = free_port()
        apiserver_cmd = [
            str(binaries.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            f"--cert-dir={workdir / 'certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            "--authorization-mode=RBAC",
            "--anonymous-auth=true",
            f"--service-account-issuer=https://127.0.0.1:{port}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            *self.extra_apiserver_args,
        ]
        self._apiserver = self._spawn("kube-apiserver", apiserver_cmd, self.apiserver_log_path)
        write_kubeconfig(
            self.kubeconfig_path,
            server=self.url,
            ca_cert=pki.ca_cert,
            user="admin",
            client_cert=pki.admin_cert,
            client_key=pki.admin_key,
        )
        self._wait_http(
            "kube-apiserver",
            port,
            "/readyz",
            deadline=deadline,
            proc=self._apiserver,
            log_path=self.apiserver_log_path,
            context=self._admin_ssl_context(),
            ok=lambda body: body.strip() == "ok",
        )
        logger.info(
            "kube apiserver ready url=%s version=%s kubeconfig=%s elapsed_s=%.1f",
            self.url,
            binaries.kube_version,
            self.kubeconfig_path,
            time.monotonic() - started,
        )

    def _spawn(self, name: str, cmd: list[str], log_path: pathlib.Path) -> subprocess.Popen[bytes]:
        log = log_path.open("ab")
        self._log_files.append(log)
        logger.info("kube process starting name=%s log=%s", name, log_path)
        logger.debug("kube process argv name=%s argv=%s", name, cmd)
        proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop them in order
            preexec_fn=_parent_death_signal(),
        )
        logger.info("kube process started name=%s pid=%d", name, proc.pid)
        return proc

    def _admin_ssl_context(self) -> ssl.SSLContext:
        pki = self._require_pki()
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return ctx

    def _wait_http(
        self,
        name: str,
        port: int,
        path: str,
        *,
        deadline: float,
        proc: subprocess.Popen[bytes],
        log_path: pathlib.Path,
        context: ssl.SSLContext | None,
        ok: Callable[[str], bool],
    ) -> None:
        url = f"{'https' if context else 'http'}://127.0.0.1:{port}{path}"
        last = "no answer yet"
        while True:
            rc = proc.poll()
            if rc is not None:
                raise KubeStartError(
                    f"{name} exited with code {rc} before it was ready ({url}); "
                    f"log {log_path}{self._kept_hint()}:\n{_file_tail(log_path)}"
                )
            try:
                status, body = _loopback_get(port, path, context=context, timeout=2)
                if status == 200 and ok(body):
                    return
                last = f"HTTP {status}: {_tail(body, 8)}"
            except (http.client.HTTPException, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise KubeStartError(
                    f"{name} was not ready after {self.start_timeout:.0f}s ({url}); last: {last}; "
                    f"log {log_path}{self._kept_hint()}:\n{_file_tail(log_path)}"
                )
            time.sleep(0.25)

    def _kept_hint(self) -> str:
        return "" if self.keep_workdir else " (removed on stop; keep_workdir=True keeps it)"

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (SIGTERM, SIGKILL after ``stop_timeout``); remove the
        temporary directory unless ``keep_workdir``. Safe to call more than once."""
        with self._lock:
            atexit.unregister(self.stop)
            for attr, name in (("_apiserver", "kube-apiserver"), ("_etcd", "etcd")):
                proc: subprocess.Popen[bytes] | None = getattr(self, attr)
                if proc is not None:
                    _stop_process(proc, name, self.stop_timeout)
                    setattr(self, attr, None)
            for log in self._log_files:
                log.close()
            self._log_files.clear()
            workdir, self._workdir = self._workdir, None
            self._pki = None
            self._port = None
            if workdir is not None:
                if self.keep_workdir:
                    logger.info("kube workdir kept path=%s", workdir)
                else:
                    shutil.rmtree(workdir, ignore_errors=True)
                    logger.info("kube workdir removed path=%s", workdir)

    # -- clients ------------------------------------------------------------------------------

    def api_client(self, kubeconfig: pathlib.Path | None = None) -> ApiClient:
        """A ``kubernetes.client.ApiClient`` for the admin kubeconfig (or another one)."""
        from kubernetes import config

        api: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.kubeconfig_path)
        )
        return api

    def server_version(self) -> str:
        """``gitVersion`` reported by ``/version``."""
        if self._port is None:
            raise KubeError("KubeApiServer is not started")
        status, body = _loopback_get(
            self._port, "/version", context=self._admin_ssl_context(), timeout=5
        )
        if status != 200:
            raise KubeError(f"GET /version answered HTTP {status}: {_tail(body, 8)}")
        version: str = json.loads(body)["gitVersion"]
        return version

    def service_account_token(
        self,
        namespace: str,
        name: str,
        *,
        expiration_seconds: int = 3600,
        audiences: Sequence[str] = (),
    ) -> str:
        """Request a token for an existing ServiceAccount through the TokenRequest API."""
        from kubernetes import client

        with self.api_client() as api:
            body = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(
                    audiences=list(audiences), expiration_seconds=expiration_seconds
                )
            )
            result = client.CoreV1Api(api).create_namespaced_service_account_token(
                name, namespace, body
            )
        token = result.status.token if result.status is not None else None
        if not token:
            raise KubeError(f"TokenRequest for serviceaccount {namespace}/{name} returned no token")
        return str(token)

    def service_account_kubeconfig(
        self,
        namespace: str,
        name: str,
        path: pathlib.Path | str,
        *,
        expiration_seconds: int = 3600,
    ) -> pathlib.Path:
        """Write a kubeconfig at ``path`` that authenticates as ServiceAccount
        ``namespace/name`` with a fresh TokenRequest token (the ServiceAccount must exist)."""
        token = self.service_account_token(namespace, name, expiration_seconds=expiration_seconds)
        out = write_kubeconfig(
            pathlib.Path(path),
            server=self.url,
            ca_cert=self.ca_cert_path,
            user=f"system:serviceaccount:{namespace}:{name}",
            token=token,
            namespace=namespace,
        )
        logger.info(
            "kube serviceaccount kubeconfig written namespace=%s name=%s path=%s",
            namespace,
            name,
            out,
        )
        return out


# --------------------------------------------------------------------------------------------
# CLI: hello-dev kube build | start
# --------------------------------------------------------------------------------------------


@click.group("kube")
def kube_group() -> None:
    """A real kube-apiserver + etcd on 127.0.0.1, built from Go modules."""


@kube_group.command("build")
@click.option("--version", "version", default=KUBE_VERSION, show_default=True)
@click.option("--etcd-version", default=ETCD_VERSION, show_default=True)
def build_command(version: str, etcd_version: str) -> None:
    """Build (or reuse cached) kube-apiserver and etcd; print their paths."""
    _configure_cli_logging()
    try:
        binaries = ensure_binaries(version, etcd_version)
    except KubeBuildError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"kube-apiserver {binaries.kube_version}: {binaries.kube_apiserver}")
    click.echo(f"etcd {binaries.etcd_version}: {binaries.etcd}")


@kube_group.command("start")
@click.option(
    "--kubeconfig-out",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help="Also copy the admin kubeconfig here (it is removed again on stop).",
)
@click.option("--start-timeout", type=float, default=DEFAULT_START_TIMEOUT, show_default=True)
@click.option("--keep-workdir", is_flag=True, help="Keep the temp dir (logs, certs) on stop.")
def start_command(
    kubeconfig_out: pathlib.Path | None, start_timeout: float, keep_workdir: bool
) -> None:
    """Start etcd + kube-apiserver and run until Ctrl-C or SIGTERM."""
    _configure_cli_logging()
    try:
        binaries = ensure_binaries()
    except KubeBuildError as exc:
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = KubeApiServer(binaries, start_timeout=start_timeout, keep_workdir=keep_workdir)
    try:
        try:
            server.start()
        except KubeStartError as exc:
            raise click.ClickException(str(exc)) from exc
        kubeconfig = server.kubeconfig_path
        if kubeconfig_out is not None:
            kubeconfig_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(kubeconfig, kubeconfig_out)
            os.chmod(kubeconfig_out, 0o600)
            kubeconfig = kubeconfig_out
        click.echo(f"kube-apiserver {binaries.kube_version} ready at {server.url}")
        click.echo(f"kubeconfig: {kubeconfig}")
        click.echo(f"export KUBECONFIG={kubeconfig}")
        click.echo("Press Ctrl-C to stop.")
        while not stop.wait(1.0):
            if not server.running:
                raise click.ClickException(
                    "kube-apiserver or etcd exited unexpectedly; apiserver log tail:\n"
                    + _file_tail(server.apiserver_log_path)
                )
    finally:
        server.stop()
        if kubeconfig_out is not None:
            kubeconfig_out.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("stopped")


def _configure_cli_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )


def register(cli_group: click.Group) -> None:
    """Add ``kube build`` and ``kube start`` to the ``hello-dev`` CLI group."""
    cli_group.add_command(kube_group)


def main() -> None:
    """``python -m hello_dev.kube build|start`` (works without the hello-dev CLI)."""
    kube_group(prog_name="python -m hello_dev.kube")


if __name__ == "__main__":
    main()
