"""Whether Kafka still acknowledges: the age of the oldest delivery not yet answered.

A broker that stops answering but keeps its connections open (a frozen
process, a stalled disk) is not reported down by librdkafka until its
request timeouts run out, tens of seconds. Meanwhile every call waits for
an acknowledgement that does not come. ``AckWatch`` lets readiness notice
sooner: the API is not ready while the oldest delivery still outstanding
has waited longer than a limit.

Deliveries are kept in a FIFO in the order they were produced. Answers
arrive mostly, but not strictly, in that order (several partitions and
brokers), so an answered entry is only marked, and marked entries are
dropped from the front. Each delivery is appended once and popped once:
O(1) amortised per call, no scan, no lock. ``sent`` and ``answered`` run on
the event loop thread; ``stalled_for`` may run on any thread, since it
reads a single attribute.

An answer is an acknowledgement or a failure (a delivery timeout, say):
either way the broker no longer holds that message up. So readiness does
not latch until the next acknowledgement: an unready pod gets no calls,
and a latch would keep it out of its Service after the broker recovered.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class Pending:
    """One delivery the broker has not answered yet."""

    __slots__ = ("answered", "sent_at")

    def __init__(self, sent_at: float) -> None:
        self.sent_at = sent_at
        self.answered = False


class AckWatch:
    def __init__(self, *, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = limit_s
        self._clock = clock
        self._queue: deque[Pending] = deque()
        # sent_at of the queue's head, or None when nothing is outstanding.
        self._oldest: float | None = None

    def __len__(self) -> int:
        """Entries held: outstanding deliveries plus answered ones behind an older one."""
        return len(self._queue)

    def sent(self) -> Pending:
        pending = Pending(self._clock())
        if not self._queue:
            self._oldest = pending.sent_at
        self._queue.append(pending)
        return pending

    def answered(self, pending: Pending) -> None:
        pending.answered = True
        queue = self._queue
        while queue and queue[0].answered:
            queue.popleft()
        self._oldest = queue[0].sent_at if queue else None

    def stalled_for(self) -> float | None:
        """Seconds the oldest outstanding delivery has waited, if that is over the limit."""
        oldest = self._oldest
        if oldest is None:
            return None
        age = self._clock() - oldest
        return age if age > self.limit_s else None
