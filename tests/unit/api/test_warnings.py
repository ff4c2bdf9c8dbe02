"""The API's per-call warnings are throttled, and what the throttle skipped is still counted."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hello_api.server import HelloApiServicer
from hello_core.logs import Throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_the_count_of_an_outage_s_last_warnings_is_logged_without_a_later_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    servicer = HelloApiServicer(object(), throttle=Throttle(5.0, clock=clock))  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING, logger="hello_api.server")
    for _ in range(1000):
        servicer._warn("publish failed", reason="Local: Message timed out")
    servicer.log_suppressed()  # within the interval: nothing yet
    clock.now += 5
    servicer.log_suppressed()
    assert [
        (r.getMessage(), getattr(r, "event", None), getattr(r, "suppressed", None))
        for r in caplog.records
    ] == [
        ("publish failed", None, 0),
        ("warnings skipped", "publish failed", 999),
    ]


def test_skipped_warnings_are_counted_periodically_without_being_asked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    servicer = HelloApiServicer(object(), throttle=Throttle(0.05))  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING, logger="hello_api.server")
    for _ in range(3):
        servicer._warn("producer queue full")

    async def run_a_while() -> None:
        task = asyncio.create_task(servicer.log_suppressed_periodically())
        await asyncio.sleep(0.3)
        task.cancel()

    asyncio.run(run_a_while())
    skipped = [r for r in caplog.records if r.getMessage() == "warnings skipped"]
    assert [(r.event, r.suppressed) for r in skipped] == [("producer queue full", 2)]  # type: ignore[attr-defined]
