"""A discrete-event fake clock for the dispatch loop: no real sleeps."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any

import pytest

# Rounds of asyncio.sleep(0) that let every runnable task reach its next
# wait before fake time moves on. Chains in these tests are a few awaits long.
SETTLE_ROUNDS = 20


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.t = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep_until(self, when: float) -> None:
        if when <= self.t:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._seq), fut))
        await fut

    def busy(self, seconds: float) -> None:
        """The generator's own thread is busy: time passes without yielding."""
        self.t += seconds

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        task = asyncio.ensure_future(coro)
        while not task.done():
            for _ in range(SETTLE_ROUNDS):
                await asyncio.sleep(0)
            if task.done():
                break
            if not self._sleepers:
                raise RuntimeError("deadlock: the task waits but nothing is scheduled")
            when, _, fut = heapq.heappop(self._sleepers)
            self.t = max(self.t, when)
            fut.set_result(None)
        return task.result()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
