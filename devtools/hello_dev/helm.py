"""Helm v4, built from the Go module proxy for chart checks.

``ensure_helm()`` (or ``python -m hello_dev.helm``) returns a ``helm`` binary at::

    <cache>/helm/<version>/bin/helm

building it on first use with ``go install helm.sh/helm/v4/cmd/helm@<version>``
(the module has no replace directives, so no tools module is needed).
``<cache>`` is :func:`hello_dev.paths.cache_dir`. Module and build caches go
to ``<cache>/go/mod`` and ``<cache>/go/build`` unless GOMODCACHE/GOCACHE are
set, the same places the kube-apiserver build uses, so downloads are shared.

The binary is only used for ``helm lint`` and ``helm template``: nothing here
talks to a cluster. Concurrent callers (pytest-xdist workers, two terminals)
wait on a file lock instead of building twice.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import subprocess
import time

from hello_dev.gotools import build_lock, find_go, go_env
from hello_dev.paths import cache_dir

logger = logging.getLogger(__name__)

HELM_VERSION = "v4.2.4"
HELM_PACKAGE = "helm.sh/helm/v4/cmd/helm"

# Without this stamp `helm version` prints the hard-coded minor ("v4.2").
_VERSION_LDFLAG = "helm.sh/helm/v4/internal/version.version"

# A cold build downloads the module graph and compiles on 2 cores.
DEFAULT_BUILD_TIMEOUT = 1800.0

# Enough of the go command's output to see why a build failed.
_ERROR_TAIL_CHARS = 4000


class HelmToolingError(RuntimeError):
    """helm could not be built or found; the message says which step failed and why."""


def helm_bin_dir(version: str = HELM_VERSION) -> pathlib.Path:
    return cache_dir() / "helm" / version / "bin"


def _go_env(gobin: pathlib.Path) -> dict[str, str]:
    env = go_env(cache_dir())
    env["GOBIN"] = str(gobin)
    return env


def _is_usable(binary: pathlib.Path) -> bool:
    return binary.is_file() and os.access(binary, os.X_OK)


def ensure_helm(
    version: str = HELM_VERSION, *, timeout: float = DEFAULT_BUILD_TIMEOUT
) -> pathlib.Path:
    """Path of a helm ``version`` binary, building it with ``go install`` if not cached.

    ``$HELLO_HELM`` names an existing binary to use instead (no build, no
    version check), for machines that already have helm.
    """
    explicit = os.environ.get("HELLO_HELM")
    if explicit:
        path = pathlib.Path(explicit).expanduser()
        if not _is_usable(path):
            raise HelmToolingError(f"$HELLO_HELM is {explicit!r}, which is not an executable file")
        return path

    bin_dir = helm_bin_dir(version)
    binary = bin_dir / "helm"
    if _is_usable(binary):
        return binary

    go = find_go(needed_for="helm", error=HelmToolingError)
    with build_lock(bin_dir.parent / ".build.lock", what="helm"):
        # Another process may have finished the build while we waited.
        if _is_usable(binary):
            return binary
        _go_install(go=go, version=version, bin_dir=bin_dir, timeout=timeout)

    if not _is_usable(binary):
        raise HelmToolingError(f"go install finished but {binary} is missing or not executable")
    return binary


def _go_install(*, go: str, version: str, bin_dir: pathlib.Path, timeout: float) -> None:
    # Build into a scratch GOBIN and rename, so an interrupted build never
    # leaves a half-written binary where ensure_helm would trust it.
    staging = bin_dir.parent / "bin.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    command = [
        go,
        "install",
        "-trimpath",
        "-ldflags",
        f"-s -w -X {_VERSION_LDFLAG}={version}",
        f"{HELM_PACKAGE}@{version}",
    ]
    logger.info("building helm from the Go module proxy version=%s dest=%s", version, bin_dir)
    started = time.monotonic()
    try:
        result = subprocess.run(
            command,
            env=_go_env(staging),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise HelmToolingError(
            f"go install {HELM_PACKAGE}@{version} did not finish in {timeout:.0f} s; "
            "the module and build caches are kept, so running it again resumes"
        ) from exc
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = (result.stdout + result.stderr)[-_ERROR_TAIL_CHARS:]
        raise HelmToolingError(
            f"go install {HELM_PACKAGE}@{version} failed (exit {result.returncode}):\n{tail}"
        )
    shutil.rmtree(bin_dir, ignore_errors=True)
    staging.rename(bin_dir)
    logger.info(
        "built helm version=%s path=%s seconds=%.1f",
        version,
        bin_dir / "helm",
        time.monotonic() - started,
    )


def main() -> None:
    """``python -m hello_dev.helm``: build helm if needed and print its path.

    CI runs this before pytest so that no test timeout has to cover a cold build.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        print(ensure_helm())
    except HelmToolingError as exc:
        raise SystemExit(f"error: {exc}") from exc


if __name__ == "__main__":
    main()
