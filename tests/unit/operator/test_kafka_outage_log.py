"""While Kafka is down, a pipeline logs its first failed poll, then one a minute, then the end."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import pytest

from hello_operator import handlers
from hello_operator.handlers import KafkaOutageLog, Runtime, poll_once
from hello_operator.kubeapi import DeploymentState
from hello_operator.lag import KafkaUnreachableError
from hello_operator.scaling import PartitionOffsets
from hello_operator.settings import OperatorSettings
from hello_operator.status import Observation

ERROR = "Kafka did not answer within 5s (bootstrap 127.0.0.1:1): Local: Broker transport failure"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeKube:
    """The two requests a poll that does not scale makes."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []

    def deployment_state(self, namespace: str, name: str) -> DeploymentState:
        return DeploymentState(replicas=2, ready_replicas=2)

    def patch_pipeline_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.statuses.append(status)


class FakeOffsets:
    def __init__(self) -> None:
        self.down = True

    def read(self, topic: str, group: str) -> Sequence[PartitionOffsets]:
        if self.down:
            raise KafkaUnreachableError(ERROR)
        return [PartitionOffsets(0, 10, 0, 10)]


def test_first_failure_is_logged_then_at_most_one_a_minute_with_the_skipped_count() -> None:
    clock = Clock()
    outage = KafkaOutageLog(clock=clock)
    logged = []
    for clock.now in (0, 30, 59.9, 60, 90, 119, 120.5):
        logged.append(outage.failed())
    assert logged == [0, None, None, 2, None, None, 2]
    assert (outage.down_since, outage.failed_polls) == (0, 7)


def test_recovery_is_reported_once_and_the_next_outage_logs_at_once() -> None:
    clock = Clock()
    outage = KafkaOutageLog(clock=clock)
    assert outage.recovered() is None  # never down
    for clock.now in (100, 115, 130, 145):
        outage.failed()
    clock.now = 160
    assert outage.recovered() == (60, 4)
    assert outage.recovered() is None
    clock.now = 170  # only 10 s after the last logged failure, but a new outage
    assert outage.failed() == 0
    assert outage.down_since == 170


def test_poll_once_logs_an_outage_once_a_minute_while_status_carries_every_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    kube, offsets = FakeKube(), FakeOffsets()
    runtime = Runtime(
        settings=OperatorSettings(),
        kube=kube,  # type: ignore[arg-type]
        offsets=offsets,  # type: ignore[arg-type]
        executor=None,  # type: ignore[arg-type]
    )
    body = {
        "metadata": {"namespace": "ns", "name": "p", "generation": 1, "uid": "u"},
        "spec": {"topic": "t", "consumerGroup": "g", "minReplicas": 2, "pollingInterval": 15},
    }
    obs, outage = Observation(), KafkaOutageLog(clock=clock)

    with caplog.at_level(logging.INFO, logger=handlers.__name__):
        for step in range(11):  # down from 0 s to 150 s, one poll every 15 s
            clock.now = 15.0 * step
            poll_once(runtime, body, obs, outage, now=1_700_000_000 + clock.now)
        offsets.down = False
        for step in (11, 12):
            clock.now = 15.0 * step
            poll_once(runtime, body, obs, outage, now=1_700_000_000 + clock.now)

    lines = [r.getMessage() for r in caplog.records if r.name == handlers.__name__]
    assert len(lines) == 4, lines
    for line, suppressed in zip(lines[:3], (0, 3, 3), strict=True):
        assert re.fullmatch(
            r"kafka unreachable, replicas kept, will retry in 15s namespace=ns name=p replicas=2"
            rf" suppressed={suppressed} error={re.escape(ERROR)}",
            line,
        )
    assert lines[3] == "kafka reachable again namespace=ns name=p down_seconds=165 failed_polls=11"
    assert [r.levelname for r in caplog.records if r.name == handlers.__name__] == [
        "WARNING",
        "WARNING",
        "WARNING",
        "INFO",
    ]
    kafka_conditions = [
        next(c for c in s["conditions"] if c["type"] == "KafkaReachable") for s in kube.statuses
    ]
    assert [c["message"] for c in kafka_conditions[:11]] == [ERROR] * 11
    assert [c["status"] for c in kafka_conditions[11:]] == ["True", "True"]
