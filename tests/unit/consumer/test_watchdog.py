"""The main thread's watch over the poll loop (threads and clocks of the test's own)."""

from __future__ import annotations

import threading

from hello_consumer.loop import STUCK_CALL_SECONDS, ConsumerLoop
from hello_consumer.settings import ConsumerSettings
from hello_consumer.watchdog import watch


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class FakeLoop:
    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.stuck: tuple[str, float] | None = None

    def stuck_call(self) -> tuple[str, float] | None:
        return self.stuck


def blocked_worker() -> tuple[threading.Thread, threading.Event]:
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=True)
    worker.start()
    return worker, release


def test_returns_nothing_when_the_loop_ends_by_itself() -> None:
    worker = threading.Thread(target=lambda: None)
    worker.start()
    assert watch(FakeLoop(), worker, shutdown_grace_seconds=5, tick=0.01) is None


def test_a_stuck_kafka_call_is_a_reason_to_exit() -> None:
    loop = FakeLoop()
    loop.stuck = ("send_offsets_to_transaction", 61.4)
    worker, release = blocked_worker()
    try:
        reason = watch(loop, worker, shutdown_grace_seconds=5, tick=0.01)
    finally:
        release.set()
    assert reason == "send_offsets_to_transaction has not returned for 61s, past its own timeout"


def test_a_stop_that_outlasts_the_grace_is_a_reason_to_exit() -> None:
    clock = FakeClock()
    loop = FakeLoop()
    worker, release = blocked_worker()
    ticks: list[float] = []

    class Advancing(threading.Thread):
        """Each join is one tick of 1 s on the fake clock; the stop comes at the third."""

        def join(self, timeout: float | None = None) -> None:
            ticks.append(clock.now)
            clock.now += 1
            if len(ticks) == 3:
                loop.stopping.set()

        def is_alive(self) -> bool:
            return worker.is_alive()

    try:
        reason = watch(loop, Advancing(), shutdown_grace_seconds=5, clock=clock, tick=1)
    finally:
        release.set()
    assert reason == ("the loop did not stop within 5s (HELLO_CONSUMER_SHUTDOWN_GRACE_SECONDS)")
    # Stop seen at 503 (after the third join), deadline 508, exceeded at 509.
    assert clock.now == 509


def test_a_loop_that_stops_within_the_grace_is_left_to_finish() -> None:
    loop = FakeLoop()
    loop.stopping.set()
    done = threading.Event()
    worker = threading.Thread(target=lambda: done.wait(0.2))
    worker.start()
    assert watch(loop, worker, shutdown_grace_seconds=5, tick=0.01) is None


def test_a_call_is_stuck_only_once_it_outlives_its_timeout_by_the_margin() -> None:
    clock = FakeClock()
    loop = ConsumerLoop(ConsumerSettings(), clock=clock)
    assert loop.stuck_call() is None
    with loop._calling("commit_transaction"):
        clock.now += STUCK_CALL_SECONDS
        assert loop.stuck_call() is None
        clock.now += 1
        assert loop.stuck_call() == ("commit_transaction", STUCK_CALL_SECONDS + 1)
    assert loop.stuck_call() is None  # the call returned
