"""Fixtures for a real kube-apiserver + etcd on 127.0.0.1 (see hello_dev.kube).

Pull these in from tests/integration/conftest.py with::

    from tests.integration.conftest_kube import *  # noqa: F403

The first use builds kube-apiserver and etcd from Go modules (about 6 minutes cold on 2 cores;
``python -m hello_dev.kube build`` beforehand avoids that inside pytest). When the binaries are
not cached yet, the collection hook below gives the first test that needs them a timeout long
enough for the build, whichever test module that is. Later runs reuse the cached binaries and
start the server in about 4 seconds.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from hello_dev.kube import (
    DEFAULT_BUILD_TIMEOUT,
    KubeApiServer,
    KubeBinaries,
    binaries_cached,
    ensure_binaries,
)

__all__ = ["kube_apiserver", "kube_binaries", "pytest_collection_modifyitems"]

_KUBE_FIXTURES = frozenset({"kube_apiserver", "kube_binaries"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """If a cold build is due, let the first test that triggers it run long enough for it
    (pytest-timeout's limit covers fixture setup too)."""
    if binaries_cached():
        return
    for item in items:
        if _KUBE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.timeout(DEFAULT_BUILD_TIMEOUT + 600), append=False)
            return


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
