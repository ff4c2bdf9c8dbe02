"""The live progress bar: elapsed time, current rate and current p99."""

from __future__ import annotations

import time
from collections import deque
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from hello_loadtest.runner import Tick
from hello_loadtest.stats import INTERVAL_SIGNIFICANT_FIGURES, new_histogram

# Rate and p99 are shown over the ticks of the last this many seconds.
WINDOW_S = 1.0


class LiveProgress:
    def __init__(self, console: Console, *, total_s: float, label: str) -> None:
        self._total_s = total_s
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[rate]:>8} calls/s"),
            TextColumn("p99 {task.fields[p99]:>8} ms"),
            TextColumn("done {task.fields[done]}"),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._label = label
        self._start: float | None = None
        self._ticks: deque[tuple[float, int, bytes]] = deque()
        self._done = 0

    def __enter__(self) -> Self:
        self._progress.start()
        self._task = self._progress.add_task(
            self._label, total=self._total_s, rate="-", p99="-", done=0
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def on_start(self, start_epoch: float) -> None:
        self._start = start_epoch

    def on_tick(self, tick: Tick) -> None:
        now = time.time()
        self._done += tick.completed
        self._ticks.append((now, tick.completed, tick.window))
        while self._ticks and self._ticks[0][0] < now - WINDOW_S:
            self._ticks.popleft()
        window = new_histogram(INTERVAL_SIGNIFICANT_FIGURES)
        completed = 0
        for _, n, encoded in self._ticks:
            completed += n
            window.decode_and_add(encoded)
        p99 = window.get_value_at_percentile(99) / 1000 if window.get_total_count() else None
        elapsed = max(now - self._start, 0.0) if self._start else 0.0
        if self._task is not None:
            self._progress.update(
                self._task,
                completed=min(elapsed, self._total_s),
                rate=f"{completed / WINDOW_S:.0f}",
                p99="-" if p99 is None else f"{p99:.2f}",
                done=self._done,
            )
