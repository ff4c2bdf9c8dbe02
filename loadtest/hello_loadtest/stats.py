"""Counting calls and their latencies, without I/O.

Latencies go into HDR histograms in whole microseconds. Three are kept per
worker:

- ``latency``: from the call's *scheduled* start to its reply. This is the
  figure users feel; a call that waited because the generator or the server
  fell behind carries that wait (no coordinated omission).
- ``service``: from the actual start to the reply, what a closed-loop tool
  would report. The gap between the two shows how much queueing the run saw.
- ``start_lag``: actual start minus scheduled start.

Only successful calls enter ``latency`` and ``service``; failures are counted
by gRPC status code instead (a DEADLINE_EXCEEDED call's latency is the
deadline, which says nothing new). Calls scheduled during warm-up are sent
but left out of everything except ``warmup_calls``.

Each worker process keeps its own ``Recorder``; ``Recorder.export`` turns it
into plain data that crosses a process boundary, and ``merge`` adds exports
together, so several processes can share one schedule.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

LOWEST_US = 1
# An hour: long enough for the start lag of a generator that fell far behind.
HIGHEST_US = 3_600_000_000
SIGNIFICANT_FIGURES = 3
# Per-interval histograms only feed plots; two figures keep long runs small.
INTERVAL_SIGNIFICANT_FIGURES = 2
# Timelines are cut into at most this many intervals, whatever the duration.
MAX_INTERVALS = 600

LateCause = Literal["generator", "concurrency_limit"]


def new_histogram(significant_figures: int = SIGNIFICANT_FIGURES) -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, significant_figures)


def to_us(seconds: float) -> int:
    """Whole microseconds within the histogram's range (longer values are clamped)."""
    return min(max(round(seconds * 1_000_000), LOWEST_US), HIGHEST_US)


def interval_for(duration_s: float) -> int:
    """Timeline bucket width in whole seconds: 1 s, or wider for runs over MAX_INTERVALS s."""
    return max(1, math.ceil(duration_s / MAX_INTERVALS))


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Milliseconds (see ``percentiles`` for the precision)."""

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


def percentiles(histogram: HdrHistogram) -> Percentiles:
    """Percentiles in milliseconds, each an upper bound on the true value.

    The histogram answers with the top of the bucket holding the value, at
    most 0.1% above it (a 49 ms value comes back as 49.023 ms; values under
    2.048 ms are exact). Gates built on these figures therefore never pass
    a run whose true percentile is over the limit.
    """
    if histogram.get_total_count() == 0:
        return Percentiles(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def ms(us: float) -> float:
        return round(us / 1000, 3)

    def at(percentile: float) -> float:
        return ms(histogram.get_value_at_percentile(percentile))

    return Percentiles(
        count=histogram.get_total_count(),
        min=ms(histogram.get_min_value()),
        mean=ms(histogram.get_mean_value()),
        p50=at(50),
        p90=at(90),
        p99=at(99),
        p999=at(99.9),
        max=ms(histogram.get_max_value()),
    )


@dataclass(slots=True)
class IntervalCounts:
    target: int = 0  # calls scheduled to start in the interval
    sent: int = 0  # calls that actually started in it
    ok: int = 0
    failed: int = 0
    late: int = 0
    latency: HdrHistogram = field(
        default_factory=lambda: new_histogram(INTERVAL_SIGNIFICANT_FIGURES)
    )


@dataclass(frozen=True, slots=True)
class IntervalExport:
    target: int
    sent: int
    ok: int
    failed: int
    late: int
    latency: bytes


@dataclass(frozen=True, slots=True)
class RecorderExport:
    """A recorder as plain, picklable data."""

    interval_s: int
    warmup_s: float
    late_threshold_s: float
    scheduled: int
    sent: int
    ok: int
    failed_by_code: dict[str, int]
    not_sent: int
    warmup_calls: int
    late_generator: int
    late_concurrency_limit: int
    latency: bytes
    service: bytes
    start_lag: bytes
    intervals: dict[int, IntervalExport]
    ok_ids: list[str]
    last_start_s: float
    last_end_s: float = 0.0
    # Busy CPU seconds of the process divided by the wall time it ran.
    cpu_utilization: float = 0.0
    # When a stop request (Ctrl-C) ended the schedule, from the run's start; None if none did.
    stopped_s: float | None = None


class Recorder:
    """Counts and histograms of one worker's calls.

    Times are offsets in seconds from the start of the run (warm-up included);
    ``warmup_s`` says where the measured part begins.
    """

    def __init__(
        self,
        *,
        interval_s: int = 1,
        warmup_s: float = 0.0,
        late_threshold_s: float = 0.005,
        keep_ids: bool = False,
    ) -> None:
        self.interval_s = interval_s
        self.warmup_s = warmup_s
        self.late_threshold_s = late_threshold_s
        self.keep_ids = keep_ids
        self.scheduled = 0
        self.sent = 0
        self.ok = 0
        self.failed_by_code: Counter[str] = Counter()
        self.not_sent = 0
        self.warmup_calls = 0
        self.late_generator = 0
        self.late_concurrency_limit = 0
        self.latency = new_histogram()
        self.service = new_histogram()
        self.start_lag = new_histogram()
        self.intervals: dict[int, IntervalCounts] = {}
        self.ok_ids: list[str] = []
        self.cpu_utilization = 0.0
        self.last_start_s = 0.0
        self.last_end_s = 0.0
        self.stopped_s: float | None = None
        # OK latencies since the last take_window(), warm-up included: live progress.
        self.window = new_histogram(INTERVAL_SIGNIFICANT_FIGURES)
        self.window_completed = 0

    def _interval(self, offset_s: float) -> IntervalCounts:
        key = max(0, math.floor((offset_s - self.warmup_s) / self.interval_s))
        counts = self.intervals.get(key)
        if counts is None:
            counts = self.intervals[key] = IntervalCounts()
        return counts

    def is_warmup(self, scheduled_s: float) -> bool:
        return scheduled_s < self.warmup_s

    def record_scheduled(self, scheduled_s: float) -> None:
        """A call came due (whether or not it can start on time)."""
        if self.is_warmup(scheduled_s):
            return
        self.scheduled += 1
        self._interval(scheduled_s).target += 1

    def record_not_sent(self, scheduled_s: float) -> None:
        """A call came due but the run ended before it could start."""
        if not self.is_warmup(scheduled_s):
            self.not_sent += 1

    def record_start(self, scheduled_s: float, started_s: float, cause: LateCause) -> bool:
        """A call started; returns whether it counts as late.

        ``cause`` names what held it back if it was late: the generator itself
        (its event loop was busy when the call came due) or the in-flight limit
        (every slot was taken by calls the server had not answered yet).
        """
        if self.is_warmup(scheduled_s):
            self.warmup_calls += 1
            return False
        self.sent += 1
        self.last_start_s = max(self.last_start_s, started_s)
        self._interval(started_s).sent += 1
        lag_s = max(started_s - scheduled_s, 0.0)
        self.start_lag.record_value(to_us(lag_s))
        late = lag_s > self.late_threshold_s
        if late:
            self._interval(scheduled_s).late += 1
            if cause == "generator":
                self.late_generator += 1
            else:
                self.late_concurrency_limit += 1
        return late

    def record_end(
        self,
        scheduled_s: float,
        started_s: float,
        finished_s: float,
        code: str,
        message_id: str | None = None,
    ) -> None:
        """A call finished with gRPC status ``code`` (``"OK"`` on success)."""
        self.last_end_s = max(self.last_end_s, finished_s)
        self.window_completed += 1
        if code == "OK":
            self.window.record_value(to_us(finished_s - scheduled_s))
            if self.keep_ids and message_id:
                # Warm-up calls were sent too, so verification expects them.
                self.ok_ids.append(message_id)
        if self.is_warmup(scheduled_s):
            return
        interval = self._interval(scheduled_s)
        if code == "OK":
            self.ok += 1
            interval.ok += 1
            latency_us = to_us(finished_s - scheduled_s)
            self.latency.record_value(latency_us)
            self.service.record_value(to_us(finished_s - started_s))
            interval.latency.record_value(latency_us)
        else:
            self.failed_by_code[code] += 1
            interval.failed += 1

    @property
    def failed(self) -> int:
        return sum(self.failed_by_code.values())

    def take_window(self) -> tuple[int, bytes]:
        """Calls completed and encoded OK latencies since the last call; then reset."""
        completed, encoded = self.window_completed, self.window.encode()
        self.window.reset()
        self.window_completed = 0
        return completed, encoded

    def export(self) -> RecorderExport:
        return RecorderExport(
            interval_s=self.interval_s,
            warmup_s=self.warmup_s,
            late_threshold_s=self.late_threshold_s,
            scheduled=self.scheduled,
            sent=self.sent,
            ok=self.ok,
            failed_by_code=dict(self.failed_by_code),
            not_sent=self.not_sent,
            warmup_calls=self.warmup_calls,
            late_generator=self.late_generator,
            late_concurrency_limit=self.late_concurrency_limit,
            latency=self.latency.encode(),
            service=self.service.encode(),
            start_lag=self.start_lag.encode(),
            intervals={
                key: IntervalExport(c.target, c.sent, c.ok, c.failed, c.late, c.latency.encode())
                for key, c in self.intervals.items()
            },
            ok_ids=list(self.ok_ids),
            last_start_s=self.last_start_s,
            last_end_s=self.last_end_s,
            cpu_utilization=self.cpu_utilization,
            stopped_s=self.stopped_s,
        )


@dataclass(slots=True)
class Merged:
    """Several workers' exports added together."""

    interval_s: int
    late_threshold_s: float
    scheduled: int
    sent: int
    ok: int
    failed_by_code: dict[str, int]
    not_sent: int
    warmup_calls: int
    late_generator: int
    late_concurrency_limit: int
    latency: HdrHistogram
    service: HdrHistogram
    start_lag: HdrHistogram
    intervals: dict[int, IntervalCounts]
    ok_ids: list[str]
    cpu_utilization: list[float]
    warmup_s: float = 0.0
    last_start_s: float = 0.0
    # When the last call ended (seconds from the run's start, warm-up included).
    last_end_s: float = 0.0
    # The latest stop of any worker (see RecorderExport); None when none was stopped.
    stopped_s: float | None = None

    @property
    def failed(self) -> int:
        return sum(self.failed_by_code.values())

    @property
    def late(self) -> int:
        return self.late_generator + self.late_concurrency_limit


def merge(exports: list[RecorderExport]) -> Merged:
    if not exports:
        raise ValueError("nothing to merge")
    first = exports[0]
    merged = Merged(
        interval_s=first.interval_s,
        late_threshold_s=first.late_threshold_s,
        scheduled=0,
        sent=0,
        ok=0,
        failed_by_code={},
        not_sent=0,
        warmup_calls=0,
        late_generator=0,
        late_concurrency_limit=0,
        latency=new_histogram(),
        service=new_histogram(),
        start_lag=new_histogram(),
        intervals={},
        ok_ids=[],
        cpu_utilization=[],
        warmup_s=first.warmup_s,
    )
    failed: Counter[str] = Counter()
    for part in exports:
        if part.interval_s != first.interval_s:
            raise ValueError("exports use different interval widths")
        merged.scheduled += part.scheduled
        merged.sent += part.sent
        merged.ok += part.ok
        failed.update(part.failed_by_code)
        merged.not_sent += part.not_sent
        merged.warmup_calls += part.warmup_calls
        merged.late_generator += part.late_generator
        merged.late_concurrency_limit += part.late_concurrency_limit
        merged.latency.decode_and_add(part.latency)
        merged.service.decode_and_add(part.service)
        merged.start_lag.decode_and_add(part.start_lag)
        merged.ok_ids.extend(part.ok_ids)
        merged.cpu_utilization.append(part.cpu_utilization)
        merged.last_start_s = max(merged.last_start_s, part.last_start_s)
        merged.last_end_s = max(merged.last_end_s, part.last_end_s)
        if part.stopped_s is not None:
            merged.stopped_s = max(merged.stopped_s or 0.0, part.stopped_s)
        for key, counts in part.intervals.items():
            into = merged.intervals.setdefault(key, IntervalCounts())
            into.target += counts.target
            into.sent += counts.sent
            into.ok += counts.ok
            into.failed += counts.failed
            into.late += counts.late
            into.latency.decode_and_add(counts.latency)
    merged.failed_by_code = dict(sorted(failed.items()))
    return merged


# A run counts as generator-limited when more than this share of its calls
# started late because the generator's own loop was busy...
GENERATOR_LATE_SHARE = 0.01
# ...or when it fell short of the target rate while a worker process used
# at least this much of a CPU core.
GENERATOR_CPU_SATURATED = 0.9
RATE_SHORTFALL = 0.95


@dataclass(frozen=True, slots=True)
class GeneratorVerdict:
    limited: bool
    reason: str | None


def generator_verdict(
    *, sent: int, late_generator: int, achieved_ratio: float | None, cpu: list[float]
) -> GeneratorVerdict:
    """Whether the load generator, rather than the server, limited the run."""
    if sent and late_generator / sent > GENERATOR_LATE_SHARE:
        share = late_generator / sent
        return GeneratorVerdict(
            True,
            f"{share:.1%} of calls started late because the generator was busy;"
            " add --processes or lower the rate",
        )
    busiest = max(cpu, default=0.0)
    if (
        achieved_ratio is not None
        and achieved_ratio < RATE_SHORTFALL
        and busiest >= GENERATOR_CPU_SATURATED
    ):
        return GeneratorVerdict(
            True,
            f"achieved {achieved_ratio:.0%} of the target rate while a worker used"
            f" {busiest:.0%} of a core; add --processes",
        )
    return GeneratorVerdict(False, None)
