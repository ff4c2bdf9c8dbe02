"""When each call should start: arrival schedules for the open-model scenarios.

An open scenario is a list of phases whose arrival rate changes linearly from
``start_rate`` to ``end_rate`` over ``duration_s``. Constant, soak and burst
phases are the special case ``start_rate == end_rate``; a ramp is one phase
with different ends. ``cumulative(t)``, the expected number of arrivals by
time ``t``, is then piecewise quadratic, and the k-th call is scheduled where
``cumulative`` reaches a target value:

- ``uniform`` arrivals use the targets ``k + 0.5``. At a constant rate ``r``
  that gives evenly spaced starts at ``(k + 0.5) / r``, and exactly ``r * d``
  calls in any whole window of ``d`` seconds with ``r * d`` an integer.
- ``poisson`` arrivals use cumulative sums of Exp(1) draws as targets (the
  time-rescaling construction of an inhomogeneous Poisson process), so the
  gaps are random while the mean rate follows the same profile.

The closed scenario has no schedule: a fixed number of loops each start the
next call when the previous one ends.

Everything here is pure; the runner turns offsets into clock times.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

ArrivalProcess = Literal["uniform", "poisson"]
OpenKind = Literal["constant", "ramp", "burst", "soak"]


@dataclass(frozen=True, slots=True)
class Phase:
    duration_s: float
    start_rate: float
    end_rate: float

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise ValueError(f"phase duration must be positive, got {self.duration_s}")
        if self.start_rate < 0 or self.end_rate < 0:
            raise ValueError("rates must not be negative")

    @property
    def expected_calls(self) -> float:
        return (self.start_rate + self.end_rate) / 2 * self.duration_s


@dataclass(frozen=True, slots=True)
class OpenScenario:
    """A scenario with a target arrival rate over time."""

    kind: OpenKind
    phases: tuple[Phase, ...]
    params: dict[str, float] = field(default_factory=dict, compare=False)
    warmup_s: float = 0.0

    @property
    def duration_s(self) -> float:
        """Length of the measured part, warm-up excluded."""
        return sum(p.duration_s for p in self.phases) - self.warmup_s

    @property
    def expected_calls(self) -> float:
        return sum(p.expected_calls for p in self.phases)


@dataclass(frozen=True, slots=True)
class ClosedScenario:
    """A fixed number of loops, each sending the next call when the last one ends.

    The loops run for ``warmup_s + duration_s``; calls started in the first
    ``warmup_s`` are not counted.
    """

    concurrency: int
    duration_s: float
    warmup_s: float = 0.0
    kind: Literal["closed"] = "closed"
    # Stop after this many calls (warm-up included), possibly before duration_s.
    max_calls: int | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.duration_s <= 0:
            raise ValueError("duration must be positive")

    @property
    def params(self) -> dict[str, float]:
        params: dict[str, float] = {"concurrency": self.concurrency, "duration_s": self.duration_s}
        if self.max_calls is not None:
            params["max_calls"] = self.max_calls
        return params


Scenario = OpenScenario | ClosedScenario


def _with_warmup(phases: list[Phase], warmup_s: float) -> tuple[Phase, ...]:
    # Warm-up runs at the scenario's first rate before the measured phases;
    # a scenario that starts idle therefore warms up with no calls at all.
    if warmup_s > 0:
        phases.insert(0, Phase(warmup_s, phases[0].start_rate, phases[0].start_rate))
    return tuple(phases)


def constant(rate: float, duration_s: float, *, warmup_s: float = 0.0) -> OpenScenario:
    phases = _with_warmup([Phase(duration_s, rate, rate)], warmup_s)
    params = {"rate": rate, "duration_s": duration_s}
    return OpenScenario("constant", phases, params, warmup_s)


def soak(rate: float, duration_s: float, *, warmup_s: float = 0.0) -> OpenScenario:
    """A long constant-rate run; the same schedule, reported as a soak."""
    phases = _with_warmup([Phase(duration_s, rate, rate)], warmup_s)
    return OpenScenario("soak", phases, {"rate": rate, "duration_s": duration_s}, warmup_s)


def ramp(
    start_rate: float, end_rate: float, duration_s: float, *, warmup_s: float = 0.0
) -> OpenScenario:
    phases = _with_warmup([Phase(duration_s, start_rate, end_rate)], warmup_s)
    params = {"start_rate": start_rate, "end_rate": end_rate, "duration_s": duration_s}
    return OpenScenario("ramp", phases, params, warmup_s)


def burst(
    *,
    base_rate: float,
    spike_rate: float,
    idle_s: float,
    spike_s: float,
    cycles: int,
    warmup_s: float = 0.0,
) -> OpenScenario:
    """``cycles`` times (idle at ``base_rate``, then a spike), then a final idle period."""
    if cycles < 1:
        raise ValueError("a burst needs at least one cycle")
    phases: list[Phase] = []
    for _ in range(cycles):
        phases.append(Phase(idle_s, base_rate, base_rate))
        phases.append(Phase(spike_s, spike_rate, spike_rate))
    phases.append(Phase(idle_s, base_rate, base_rate))
    params = {
        "base_rate": base_rate,
        "spike_rate": spike_rate,
        "idle_s": idle_s,
        "spike_s": spike_s,
        "cycles": cycles,
    }
    return OpenScenario("burst", _with_warmup(phases, warmup_s), params, warmup_s)


@dataclass(frozen=True, slots=True)
class Arrival:
    index: int
    at_s: float  # offset from the start of the run, warm-up included
    warmup: bool


def cumulative(phases: Iterable[Phase], t: float) -> float:
    """Expected number of arrivals in ``[0, t)``."""
    total = 0.0
    for phase in phases:
        if t <= 0:
            break
        u = min(t, phase.duration_s)
        slope = (phase.end_rate - phase.start_rate) / phase.duration_s
        total += phase.start_rate * u + slope * u * u / 2
        t -= phase.duration_s
    return total


def _solve_in_phase(phase: Phase, needed: float) -> float:
    """Time into ``phase`` at which ``needed`` more arrivals are expected."""
    a = phase.start_rate
    slope = (phase.end_rate - phase.start_rate) / phase.duration_s
    # a*u + slope*u^2/2 = needed, in the form that stays accurate when slope -> 0
    # and that also holds for a falling rate.
    disc = max(a * a + 2 * slope * needed, 0.0)
    return 2 * needed / (a + math.sqrt(disc))


def _targets(process: ArrivalProcess, seed: int) -> Iterator[float]:
    if process == "uniform":
        k = 0
        while True:
            yield k + 0.5
            k += 1
    rng = random.Random(seed)  # noqa: S311 - arrival times, not secrets
    total = 0.0
    while True:
        total += rng.expovariate(1.0)
        yield total


def arrivals(
    scenario: OpenScenario, *, process: ArrivalProcess = "uniform", seed: int = 0
) -> Iterator[Arrival]:
    """Every scheduled call of ``scenario`` in order of start time; finite."""
    phases = scenario.phases
    phase_index = 0
    phase_start_s = 0.0
    phase_start_count = 0.0
    for index, target in enumerate(_targets(process, seed)):
        while phase_index < len(phases):
            phase = phases[phase_index]
            if phase_start_count + phase.expected_calls > target:
                break
            phase_start_s += phase.duration_s
            phase_start_count += phase.expected_calls
            phase_index += 1
        else:
            return
        at_s = phase_start_s + _solve_in_phase(phases[phase_index], target - phase_start_count)
        yield Arrival(index, at_s, at_s < scenario.warmup_s)


def shard(schedule: Iterable[Arrival], worker: int, workers: int) -> Iterator[Arrival]:
    """The arrivals worker ``worker`` of ``workers`` sends: every ``workers``-th one.

    Interleaving keeps each worker's rate an even share at every moment, so a
    ramp or a burst hits all processes at once.
    """
    if not 0 <= worker < workers:
        raise ValueError(f"worker {worker} is not in 0..{workers - 1}")
    for arrival in schedule:
        if arrival.index % workers == worker:
            yield arrival


def closed_loops_for(worker: int, workers: int, concurrency: int) -> int:
    """How many of ``concurrency`` closed loops worker ``worker`` runs (spread evenly)."""
    base, extra = divmod(concurrency, workers)
    return base + (1 if worker < extra else 0)
