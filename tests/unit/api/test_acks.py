"""Readiness when Kafka stops acknowledging: the oldest outstanding delivery, on a fake clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hello_api.acks import AckWatch
from hello_api.server import readiness
from hello_api.settings import ApiSettings
from hello_core.errors import ConfigError
from hello_core.settings import load_settings


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def watch(clock: FakeClock) -> AckWatch:
    return AckWatch(limit_s=5.0, clock=clock)


def test_nothing_outstanding_is_never_stalled(watch: AckWatch, clock: FakeClock) -> None:
    clock.t += 3600
    assert watch.stalled_for() is None


def test_a_delivery_waiting_past_the_limit_is_a_stall_and_its_answer_ends_it(
    watch: AckWatch, clock: FakeClock
) -> None:
    pending = watch.sent()
    clock.t += 5.0
    assert watch.stalled_for() is None  # at the limit, not over it
    clock.t += 0.5
    assert watch.stalled_for() == 5.5
    watch.answered(pending)
    assert watch.stalled_for() is None
    assert len(watch) == 0


def test_the_oldest_outstanding_delivery_decides_even_when_newer_ones_are_answered(
    watch: AckWatch, clock: FakeClock
) -> None:
    first = watch.sent()
    clock.t += 1
    second = watch.sent()
    clock.t += 1
    third = watch.sent()
    watch.answered(second)
    watch.answered(third)
    clock.t += 4  # first has waited 6 s, the answered ones do not count
    assert watch.stalled_for() == 6.0
    assert len(watch) == 3  # answered ones wait behind the oldest, unscanned
    watch.answered(first)
    assert watch.stalled_for() is None
    assert len(watch) == 0


def test_after_the_oldest_is_answered_the_next_oldest_decides(
    watch: AckWatch, clock: FakeClock
) -> None:
    first = watch.sent()
    clock.t += 2
    watch.sent()
    clock.t += 6
    assert watch.stalled_for() == 8.0
    watch.answered(first)
    assert watch.stalled_for() == 6.0  # the second has waited 6 s too


def test_deliveries_answered_in_order_leave_nothing_behind(
    watch: AckWatch, clock: FakeClock
) -> None:
    for _ in range(10_000):
        pending = watch.sent()
        clock.t += 0.001
        watch.answered(pending)
    assert len(watch) == 0
    assert watch.stalled_for() is None


@dataclass
class FakePublisher:
    brokers_down: bool = False
    stalled: float | None = None
    topic_missing: bool = False
    topic: str = "default-topic"

    def stalled_for(self) -> float | None:
        return self.stalled


@pytest.mark.parametrize(
    ("publisher", "expected"),
    [
        (FakePublisher(), (True, "ok")),
        (FakePublisher(stalled=7.34), (False, "kafka has not answered a message for 7.3s")),
        (FakePublisher(brokers_down=True), (False, "kafka brokers unreachable")),
        (FakePublisher(brokers_down=True, stalled=9), (False, "kafka brokers unreachable")),
        (FakePublisher(topic_missing=True), (False, "topic 'default-topic' does not exist")),
    ],
)
def test_readiness_fails_when_brokers_are_down_the_topic_is_missing_or_acks_stall(
    publisher: FakePublisher, expected: tuple[bool, str]
) -> None:
    assert readiness(publisher) == expected


def test_a_draining_server_is_not_ready_whatever_kafka_says() -> None:
    assert readiness(FakePublisher(), draining=True) == (False, "draining")


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("HELLO_API_"):
            monkeypatch.delenv(name)
    yield


@pytest.mark.usefixtures("clean_environ")
def test_the_ack_stall_limit_defaults_to_five_seconds_and_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings(ApiSettings).ack_stall_seconds == 5.0
    monkeypatch.setenv("HELLO_API_ACK_STALL_SECONDS", "2.5")
    assert load_settings(ApiSettings).ack_stall_seconds == 2.5
    monkeypatch.setenv("HELLO_API_ACK_STALL_SECONDS", "0")
    with pytest.raises(ConfigError, match="HELLO_API_ACK_STALL_SECONDS"):
        load_settings(ApiSettings)


@pytest.mark.usefixtures("clean_environ")
def test_an_ack_stall_limit_not_below_the_delivery_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HELLO_API_ACK_STALL_SECONDS", "10")
    with pytest.raises(ConfigError) as info:
        load_settings(ApiSettings)
    assert str(info.value) == (
        "invalid settings: HELLO_API_ACK_STALL_SECONDS (10) must be shorter than "
        "HELLO_API_DELIVERY_TIMEOUT_MS (10000 ms)"
    )
    monkeypatch.setenv("HELLO_API_DELIVERY_TIMEOUT_MS", "10001")
    assert load_settings(ApiSettings).ack_stall_seconds == 10.0
