"""Fixtures for a real kube-apiserver + etcd on 127.0.0.1 (see hello_dev.kube).

Pull these in from tests/integration/conftest.py with::

    from tests.integration.conftest_kube import *  # noqa: F403

The first use builds kube-apiserver and etcd from Go modules (many minutes cold on 2 cores;
run ``python -m hello_dev.kube build`` beforehand in CI so no test timeout covers the build).
Later runs reuse the cached binaries and start the server in a few seconds.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from hello_dev.kube import KubeApiServer, KubeBinaries, ensure_binaries

__all__ = ["kube_apiserver", "kube_binaries"]


@pytest.fixture(scope="session")
def kube_binaries() -> KubeBinaries:
    """The pinned kube-apiserver and etcd binaries, built and cached on first use."""
    return ensure_binaries()


@pytest.fixture(scope="session")
def kube_apiserver(
    kube_binaries: KubeBinaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeApiServer]:
    """One running API server for the test session (RBAC on, admin kubeconfig at
    ``.kubeconfig_path``). Tests should work in their own namespaces."""
    workdir_parent: pathlib.Path = tmp_path_factory.mktemp("kube")
    with KubeApiServer(kube_binaries, workdir_parent=workdir_parent) as server:
        yield server
