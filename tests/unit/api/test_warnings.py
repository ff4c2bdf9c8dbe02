"""The API's per-call warnings are throttled, and what the throttle skipped is still counted."""

from __future__ import annotations

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
    assert [(r.getMessage(), getattr(r, "suppressed", None)) for r in caplog.records] == [
        ("publish failed", 0),
        ("publish failed", 999),
    ]
