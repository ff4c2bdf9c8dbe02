from __future__ import annotations

import logging

import pytest
from confluent_kafka import TopicPartition

from hello_consumer.loop import ConsumerLoop
from hello_consumer.settings import ConsumerSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_liveness_fails_only_after_the_loop_stalls_past_the_limit() -> None:
    clock = FakeClock()
    loop = ConsumerLoop(ConsumerSettings(stall_seconds=60), clock=clock)
    assert loop.live() == (True, "ok")
    clock.now += 60
    assert loop.live() == (True, "ok")
    clock.now += 1
    assert loop.live() == (False, "poll loop stalled for 61s")


def test_readiness_waits_for_the_first_assignment() -> None:
    loop = ConsumerLoop(ConsumerSettings())
    assert loop.readiness() == (False, "not yet joined the group")
    loop.ready = True
    loop.assignment = {("default-topic", 0), ("default-topic", 1)}
    assert loop.readiness() == (True, "assigned 2 partition(s)")


def test_liveness_fails_when_lost_partitions_are_not_reassigned_in_time() -> None:
    clock = FakeClock()
    loop = ConsumerLoop(ConsumerSettings(stall_seconds=30), clock=clock)
    loop._on_lost(None, [])  # type: ignore[arg-type]
    clock.now += 30
    loop.last_turn = clock.now
    assert loop.live() == (True, "ok")
    clock.now += 1
    loop.last_turn = clock.now
    assert loop.live() == (False, "partitions lost 31s ago and not reassigned")
    loop._on_assign(None, [])  # type: ignore[arg-type]
    assert loop.live() == (True, "ok")


def test_an_assignment_that_adds_nothing_is_logged_at_debug_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = ConsumerLoop(ConsumerSettings())
    caplog.set_level(logging.DEBUG, logger="hello_consumer.loop")
    loop._on_assign(None, [TopicPartition("default-topic", 0), TopicPartition("default-topic", 2)])  # type: ignore[arg-type]
    loop._on_assign(None, [])  # type: ignore[arg-type]
    assigned = [r for r in caplog.records if r.getMessage() == "partitions assigned"]
    assert [(r.levelno, r.partitions, r.assigned_total) for r in assigned] == [  # type: ignore[attr-defined]
        (logging.INFO, "default-topic[0],default-topic[2]", 2),
        (logging.DEBUG, "-", 2),
    ]
