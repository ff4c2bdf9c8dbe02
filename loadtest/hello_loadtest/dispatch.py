"""Starting calls on schedule and measuring them: the generator's inner loop.

The loop knows nothing of gRPC or of real time: it gets a ``Clock`` and a
``call`` function, so tests drive it with a fake clock and a fake server.

Open model: each arrival is started at ``start_at + arrival.at_s``. When the
loop gets to an arrival late, it starts it at once (catching up, never
skipping), and the recorder measures its latency from the scheduled time.
At most ``max_in_flight`` calls run at once; when every slot is taken the
loop waits for one, and arrivals delayed by that wait are counted as late
because of the concurrency limit rather than because of the generator.

Closed model: ``loops`` coroutines each start the next call when the last
one ends, so there is no schedule to fall behind and no late start.

Both loops take an optional ``Stop``: once it is requested (Ctrl-C in the
parent) no new call starts, and the loop returns when the calls in flight
have ended (each is bounded by its own deadline).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from hello_loadtest.schedule import Arrival
from hello_loadtest.stats import LateCause, Recorder

logger = logging.getLogger(__name__)

# (gRPC status code name, message id of an OK reply)
CallResult = tuple[str, str | None]
CallFn = Callable[[int], Awaitable[CallResult]]

# While catching up, yield to the event loop after this many starts so that
# replies keep being read.
CATCH_UP_BATCH = 32
# A wait for a far-off arrival wakes at least this often to see a stop request.
STOP_CHECK_S = 0.05


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep_until(self, when: float) -> None: ...


class LoopClock:
    """The running event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep_until(self, when: float) -> None:
        delay = when - self.now()
        await asyncio.sleep(max(0, delay))


class Stop:
    """A request, from outside the loop, to stop starting calls.

    ``at`` is the cut on the loop's clock (when the request was seen):
    arrivals due from then on never came due, and those due before it that
    have not started yet are counted as not sent.
    """

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at: float | None = None

    def request(self, at: float) -> None:
        if self.at is None:
            self.at = at


async def _sleep_until(clock: Clock, when: float, stop: Stop | None) -> None:
    if stop is None:
        await clock.sleep_until(when)
        return
    while stop.at is None and clock.now() < when:
        await clock.sleep_until(min(when, clock.now() + STOP_CHECK_S))


async def _guarded(call: CallFn, index: int) -> CallResult:
    try:
        return await call(index)
    except asyncio.CancelledError:
        raise
    except Exception:
        # A bug in the client, not a server failure; keep counting, but loudly.
        logger.exception("call raised instead of returning a status index=%d", index)
        return ("CLIENT_ERROR", None)


async def run_open(
    schedule: Iterable[Arrival],
    *,
    clock: Clock,
    start_at: float,
    stop_at: float,
    recorder: Recorder,
    call: CallFn,
    max_in_flight: int,
    stop: Stop | None = None,
) -> None:
    """Start every arrival due before ``stop_at``; count the rest as not sent.

    A requested ``stop`` ends the schedule at its cut (see ``Stop``).
    """
    slots = asyncio.Semaphore(max_in_flight)
    in_flight: set[asyncio.Task[None]] = set()
    # Offset at which the loop last finished waiting for a free slot.
    slot_wait_ended = -math.inf
    behind = 0

    async def one(arrival: Arrival, started_s: float) -> None:
        try:
            code, message_id = await _guarded(call, arrival.index)
        finally:
            slots.release()
        recorder.record_end(arrival.at_s, started_s, clock.now() - start_at, code, message_id)

    schedule_iter = iter(schedule)
    for arrival in schedule_iter:
        due = start_at + arrival.at_s
        if clock.now() < due:
            behind = 0
            await _sleep_until(clock, due, stop)
        else:
            behind += 1
            if behind % CATCH_UP_BATCH == 0:
                await asyncio.sleep(0)
        if stop is not None and stop.at is not None:
            _count_cut(recorder, arrival, schedule_iter, start_at, stop.at)
            break
        if clock.now() >= stop_at:
            _count_not_sent(recorder, arrival, schedule_iter)
            logger.warning("stopped before the schedule ended not_sent=%d", recorder.not_sent)
            break
        recorder.record_scheduled(arrival.at_s)
        if slots.locked():
            await slots.acquire()
            slot_wait_ended = clock.now() - start_at
        else:
            await slots.acquire()
        if stop is not None and stop.at is not None:
            # The stop came while every slot was taken: this call never starts.
            slots.release()
            recorder.record_not_sent(arrival.at_s)
            _count_cut(recorder, None, schedule_iter, start_at, stop.at)
            break
        started_s = clock.now() - start_at
        # The slot wait delayed this call only if it ended after the call was due.
        cause: LateCause = "concurrency_limit" if slot_wait_ended >= arrival.at_s else "generator"
        recorder.record_start(arrival.at_s, started_s, cause)
        task = asyncio.create_task(one(arrival, started_s))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.gather(*in_flight)


def _count_not_sent(recorder: Recorder, first: Arrival, rest: Iterable[Arrival]) -> None:
    for arrival in (first, *rest):
        recorder.record_scheduled(arrival.at_s)
        recorder.record_not_sent(arrival.at_s)


def _count_cut(
    recorder: Recorder,
    first: Arrival | None,
    rest: Iterable[Arrival],
    start_at: float,
    cut: float,
) -> None:
    """Arrivals due before the cut were due but not sent; the later ones never came due."""
    for arrival in itertools.chain([first] if first is not None else [], rest):
        if start_at + arrival.at_s >= cut:
            break
        recorder.record_scheduled(arrival.at_s)
        recorder.record_not_sent(arrival.at_s)


async def run_closed(
    *,
    loops: int,
    clock: Clock,
    start_at: float,
    end_at: float,
    recorder: Recorder,
    call: CallFn,
    first_index: int = 0,
    index_step: int = 1,
    max_calls: int | None = None,
    stop: Stop | None = None,
) -> None:
    """Run ``loops`` back-to-back call loops until ``end_at`` (or ``max_calls`` calls).

    Call indexes are ``first_index + k * index_step``, so that workers sharing a
    run can interleave theirs without collisions.
    """
    issued = 0

    async def loop() -> None:
        nonlocal issued
        while (
            clock.now() < end_at
            and (max_calls is None or issued < max_calls)
            and (stop is None or stop.at is None)
        ):
            index = first_index + issued * index_step
            issued += 1
            started_s = clock.now() - start_at
            recorder.record_scheduled(started_s)
            recorder.record_start(started_s, started_s, "generator")
            code, message_id = await _guarded(call, index)
            recorder.record_end(started_s, started_s, clock.now() - start_at, code, message_id)

    await asyncio.gather(*(loop() for _ in range(loops)))
