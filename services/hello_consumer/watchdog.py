"""Watching the poll loop from the main thread.

The loop runs in its own thread so that the main thread stays free to take
signals: a Python signal handler only runs in the main thread, between
bytecodes, so a loop blocked inside a librdkafka call would otherwise not
even hear SIGTERM. When the loop cannot finish, the process exits with
nothing committed; the batch in flight is read again by whoever takes its
partitions (exactly once still holds: its transaction never committed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Watched(Protocol):
    stopping: threading.Event

    def stuck_call(self) -> tuple[str, float] | None: ...


def watch(
    loop: Watched,
    worker: threading.Thread,
    *,
    shutdown_grace_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    tick: float = 0.5,
) -> str | None:
    """Wait for ``worker`` to end; return why the process must exit now instead.

    Two reasons: a Kafka call that has outlived its own timeout (it may
    never return), or a stop that did not finish within
    ``shutdown_grace_seconds`` of being asked for.
    """
    stop_deadline: float | None = None
    while True:
        worker.join(tick)
        if not worker.is_alive():
            return None
        stuck = loop.stuck_call()
        if stuck is not None:
            name, waited = stuck
            return f"{name} has not returned for {waited:.0f}s, past its own timeout"
        if loop.stopping.is_set():
            if stop_deadline is None:
                stop_deadline = clock() + shutdown_grace_seconds
            elif clock() > stop_deadline:
                return (
                    f"the loop did not stop within {shutdown_grace_seconds:g}s "
                    "(HELLO_CONSUMER_SHUTDOWN_GRACE_SECONDS)"
                )
