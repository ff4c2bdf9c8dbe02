"""Real servers for integration tests, started once per session and cleaned up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hello_dev.kafka import KafkaCluster
from tests.integration.conftest_kube import *  # noqa: F403 - the kube_apiserver fixture


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaCluster]:
    """A single-node KRaft broker on 127.0.0.1, shared by the whole session."""
    with KafkaCluster(brokers=1) as cluster:
        yield cluster
