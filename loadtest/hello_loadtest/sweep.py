"""Benchmark arithmetic, without I/O: which rates held, and how two servers compare."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    """One constant-rate run of a sweep."""

    rate: float
    achieved_per_s: float
    p50_ms: float | None  # None: no call was OK
    p99_ms: float | None
    error_rate: float
    generator_limited: bool


@dataclass(frozen=True, slots=True)
class Criteria:
    max_p99_ms: float = 50.0
    max_error_rate: float = 0.001
    # A server that takes fewer calls than offered did not hold the rate.
    min_achieved_ratio: float = 0.95

    def held(self, step: Step) -> bool:
        return (
            step.p99_ms is not None
            and step.p99_ms <= self.max_p99_ms
            and step.error_rate <= self.max_error_rate
            and step.achieved_per_s >= self.min_achieved_ratio * step.rate
        )


def highest_held(steps: Iterable[Step], criteria: Criteria) -> float | None:
    """The highest rate of the unbroken run of held steps from the lowest rate up.

    A rate that holds after a lower one failed is noise on a shared machine,
    not capacity, so the sweep's answer stops at the first failure.
    """
    best = None
    for step in sorted(steps, key=lambda s: s.rate):
        if not criteria.held(step):
            break
        best = step.rate
    return best


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def relative_difference(ours: float | None, theirs: float) -> float | None:
    """(ours - theirs) / theirs, e.g. -0.05 when ours is 5% lower."""
    if not theirs or ours is None:
        return None
    return round((ours - theirs) / theirs, 3)
