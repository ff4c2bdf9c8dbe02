"""The JSON report: its schema (as pydantic models) and how a run becomes one.

The schema is versioned by ``schema_version``. Within a version, fields are
only ever added, never renamed, removed or given a new meaning; consumers
should ignore fields they do not know. ``loadtest/report.schema.json`` is
generated from these models (``hello-load schema``) and a unit test keeps it
in step; ``loadtest/REPORT-SCHEMA.md`` explains each field.

All durations are milliseconds unless a name ends in ``_s``; rates are calls
per second.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hello_loadtest import __version__
from hello_loadtest.schedule import ClosedScenario, Scenario
from hello_loadtest.stats import (
    GeneratorVerdict,
    IntervalCounts,
    Merged,
    Percentiles,
    generator_verdict,
    percentiles,
)
from hello_loadtest.verify import Reconciliation

SCHEMA_VERSION = 1
# Added within version 1: reports written before them lack them, so the
# schema file does not require them (the models give their defaults).
OPTIONAL_FIELDS = ("interrupted", "measured_s")


class _Model(BaseModel):
    # Unknown fields are ignored, not refused: a report from a newer 1.x tool
    # still loads here and still validates against an older schema file.
    model_config = ConfigDict(
        extra="ignore", frozen=True, json_schema_serialization_defaults_required=True
    )


class LatencySummary(_Model):
    """Null figures (count 0) when the histogram is empty: there is no latency to report."""

    count: int = Field(ge=0, description="Values in the histogram.")
    min_ms: float | None = Field(ge=0, description="null when count is 0; so are the others.")
    mean_ms: float | None = Field(ge=0)
    p50_ms: float | None = Field(ge=0)
    p90_ms: float | None = Field(ge=0)
    p99_ms: float | None = Field(ge=0)
    p999_ms: float | None = Field(ge=0, description="99.9th percentile.")
    max_ms: float | None = Field(ge=0)

    @classmethod
    def of(cls, p: Percentiles) -> LatencySummary:
        if p.count == 0:
            return cls(
                count=0,
                min_ms=None,
                mean_ms=None,
                p50_ms=None,
                p90_ms=None,
                p99_ms=None,
                p999_ms=None,
                max_ms=None,
            )
        return cls(
            count=p.count,
            min_ms=p.min,
            mean_ms=p.mean,
            p50_ms=p.p50,
            p90_ms=p.p90,
            p99_ms=p.p99,
            p999_ms=p.p999,
            max_ms=p.max,
        )


class ScenarioInfo(_Model):
    kind: Literal["constant", "ramp", "burst", "soak", "closed"]
    params: dict[str, int | float] = Field(
        description="The scenario's own options, e.g. rate; integer options stay integers."
    )
    arrivals: Literal["uniform", "poisson"] | None = Field(
        description="Arrival process of open scenarios; null for closed."
    )
    duration_s: float = Field(gt=0, description="Measured part, warm-up excluded.")
    warmup_s: float = Field(ge=0)


class RunConfig(_Model):
    target: str = Field(description="host:port the calls went to.")
    tls: bool
    deadline_ms: float = Field(gt=0, description="Deadline of each call.")
    max_in_flight: int = Field(ge=1, description="Per worker process.")
    processes: int = Field(ge=1)
    connections: int = Field(ge=1, description="gRPC channels per process.")
    names: str = Field(description="Name generator.")
    late_threshold_ms: float = Field(ge=0, description="Start lag above this counts as late.")


class Requests(_Model):
    scheduled: int = Field(ge=0, description="Calls due in the measured part.")
    sent: int = Field(ge=0, description="Calls that started.")
    ok: int = Field(ge=0)
    failed: int = Field(ge=0)
    failed_by_code: dict[str, int] = Field(description="gRPC status code name -> calls.")
    not_sent: int = Field(ge=0, description="Due but never started (the run was cut short).")
    warmup_calls: int = Field(ge=0, description="Sent during warm-up; excluded above.")
    error_rate: float = Field(ge=0, le=1, description="failed / (ok + failed).")


class Rates(_Model):
    target_per_s: float | None = Field(description="scheduled / duration; null for closed.")
    achieved_per_s: float = Field(ge=0, description="sent / time spent sending.")
    ok_per_s: float = Field(ge=0)
    achieved_ratio: float | None = Field(description="achieved / target; null for closed.")


class LateStarts(_Model):
    threshold_ms: float = Field(ge=0)
    total: int = Field(ge=0)
    generator: int = Field(ge=0, description="Late because the generator's loop was busy.")
    concurrency_limit: int = Field(ge=0, description="Late because every in-flight slot was taken.")


class GeneratorInfo(_Model):
    limited: bool = Field(description="True when the generator, not the server, was the limit.")
    reason: str | None
    processes: int = Field(ge=1)
    cpu_utilization: list[float] = Field(description="Per process: CPU seconds / wall seconds.")


class TimelinePoint(_Model):
    t_s: float = Field(ge=0, description="Start of the interval from the measured start.")
    target: int = Field(ge=0, description="Calls scheduled in the interval.")
    sent: int = Field(ge=0, description="Calls started in the interval.")
    ok: int = Field(ge=0)
    failed: int = Field(ge=0)
    late: int = Field(ge=0)
    p50_ms: float | None = Field(ge=0, description="null when no call in the interval was OK.")
    p99_ms: float | None = Field(ge=0)
    max_ms: float | None = Field(ge=0)


class Timeline(_Model):
    interval_s: int = Field(ge=1)
    points: list[TimelinePoint]


class Verification(_Model):
    topic: str
    expected: int = Field(ge=0, description="Message ids in OK replies, warm-up included.")
    received: int = Field(ge=0, description="Records for those ids, duplicates included.")
    lost: int = Field(ge=0)
    duplicates: int = Field(ge=0)
    unexpected: int = Field(ge=0, description="Records for ids this run did not send.")
    timed_out: bool = Field(description="The reader gave up before seeing every id.")
    waited_s: float = Field(ge=0, description="Time spent reading after the last call.")
    e2e_latency_ms: LatencySummary = Field(
        description="Accepted by the API (produced_at_ms) to processed (processed_at_ms)."
    )


class ThresholdResult(_Model):
    name: str = Field(description="The option that set it, e.g. max_p99_ms.")
    limit: float
    actual: float | None = Field(description="null when the run has no such figure.")
    passed: bool


class ThresholdSummary(_Model):
    passed: bool
    results: list[ThresholdResult]


class Report(_Model):
    schema_version: Literal[1] = 1
    tool: Literal["hello-load"] = "hello-load"
    tool_version: str = __version__
    started_at: str = Field(description="UTC, ISO 8601.")
    finished_at: str = Field(description="UTC, ISO 8601.")
    config: RunConfig
    scenario: ScenarioInfo
    requests: Requests
    rates: Rates
    latency_ms: LatencySummary = Field(
        description="OK calls, from the scheduled start to the reply."
    )
    service_time_ms: LatencySummary = Field(
        description="OK calls, from the actual start to the reply."
    )
    start_lag_ms: LatencySummary = Field(description="Actual start minus scheduled start.")
    late_starts: LateStarts
    generator: GeneratorInfo
    timeline: Timeline
    verification: Verification | None
    verification_error: str | None = Field(
        default=None,
        description="Why --verify could not read the output topic after the run "
        "(verification is null then and the exit code is 3); null otherwise.",
    )
    thresholds: ThresholdSummary
    latency_hdr: str = Field(
        description="latency_ms as a compressed, base64 HdrHistogram of microseconds."
    )
    interrupted: bool = Field(
        default=False,
        description="Ctrl-C stopped the run before its schedule ended: every figure covers "
        "measured_s only, and the exit code is 130. Missing in older reports: read as false.",
    )
    measured_s: float | None = Field(
        default=None,
        ge=0,
        description="The time the counts and rates cover, from the measured start (warm-up "
        "excluded); rates are per this. Missing (null) in older reports.",
    )


def json_schema() -> dict[str, Any]:
    # Serialization mode: fields with defaults are always written, so required.
    schema = Report.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://hello-platform.dev/schemas/loadtest-report-v1.json"
    schema["required"] = [name for name in schema["required"] if name not in OPTIONAL_FIELDS]
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def scenario_info(scenario: Scenario, arrivals: str) -> ScenarioInfo:
    if isinstance(scenario, ClosedScenario):
        return ScenarioInfo(
            kind="closed",
            params=dict(scenario.params),
            arrivals=None,
            duration_s=scenario.duration_s,
            warmup_s=scenario.warmup_s,
        )
    assert arrivals in ("uniform", "poisson")
    return ScenarioInfo(
        kind=scenario.kind,
        params=dict(scenario.params),
        arrivals=arrivals,  # type: ignore[arg-type]
        duration_s=scenario.duration_s,
        warmup_s=scenario.warmup_s,
    )


def _timeline(merged: Merged, duration_s: float) -> Timeline:
    points = []
    # The whole scheduled duration, even when its last intervals saw no calls.
    covering = math.ceil(round(duration_s / merged.interval_s, 9)) - 1
    last = max(max(merged.intervals, default=-1), covering)
    for key in range(last + 1):
        # An interval in which nothing was due or sent still gets a point, so
        # plots show the gap (a burst's idle phase at rate 0, for instance).
        counts = merged.intervals.get(key) or IntervalCounts()
        p = percentiles(counts.latency)
        points.append(
            TimelinePoint(
                t_s=key * merged.interval_s,
                target=counts.target,
                sent=counts.sent,
                ok=counts.ok,
                failed=counts.failed,
                late=counts.late,
                p50_ms=p.p50 if p.count else None,
                p99_ms=p.p99 if p.count else None,
                max_ms=p.max if p.count else None,
            )
        )
    return Timeline(interval_s=merged.interval_s, points=points)


def verification_section(
    result: Reconciliation, *, topic: str, timed_out: bool, waited_s: float
) -> Verification:
    return Verification(
        topic=topic,
        expected=result.expected,
        received=result.received,
        lost=result.lost,
        duplicates=result.duplicates,
        unexpected=result.unexpected,
        timed_out=timed_out,
        waited_s=round(waited_s, 3),
        e2e_latency_ms=LatencySummary.of(percentiles(result.e2e)),
    )


def build_report(
    merged: Merged,
    *,
    scenario: ScenarioInfo,
    config: RunConfig,
    started_at: str,
    finished_at: str,
    verification: Verification | None = None,
    verification_error: str | None = None,
    thresholds: ThresholdSummary | None = None,
    interrupted: bool = False,
) -> Report:
    """Everything but the threshold results, which ``thresholds.evaluate`` adds.

    ``interrupted`` with ``merged.stopped_s`` set: the schedule was cut there,
    so rates (the target rate too) and the timeline cover the time up to it.
    """
    completed = merged.ok + merged.failed
    # Time spent sending: the nominal duration, or longer when the generator
    # fell behind and started its last calls after the schedule ended.
    sending_s = max(scenario.duration_s, merged.last_start_s - merged.warmup_s)
    closed = scenario.kind == "closed"
    if closed and "max_calls" in scenario.params:
        # Stopped by --max-calls, maybe long before the nominal duration: rates
        # and the timeline cover the time the calls actually took.
        elapsed = max(merged.last_end_s, merged.last_start_s) - merged.warmup_s
        if elapsed > 0:
            sending_s = min(sending_s, elapsed)
    stopped_s = merged.stopped_s if interrupted else None
    cut = stopped_s is not None
    if stopped_s is not None:
        # Rounded as reported, so that rates are exactly per measured_s.
        sending_s = round(min(sending_s, max(stopped_s - merged.warmup_s, 0.0)), 3)
    if closed or sending_s <= 0:  # nothing measured when Ctrl-C came during warm-up
        target = None
    else:
        target = round(merged.scheduled / (sending_s if cut else scenario.duration_s), 3)
    achieved = round(merged.sent / sending_s, 3) if sending_s > 0 else 0.0
    ratio = round(achieved / target, 4) if target else None
    verdict: GeneratorVerdict = generator_verdict(
        sent=merged.sent,
        late_generator=merged.late_generator,
        achieved_ratio=ratio,
        cpu=merged.cpu_utilization,
    )
    return Report(
        started_at=started_at,
        finished_at=finished_at,
        config=config,
        scenario=scenario,
        requests=Requests(
            scheduled=merged.scheduled,
            sent=merged.sent,
            ok=merged.ok,
            failed=merged.failed,
            failed_by_code=merged.failed_by_code,
            not_sent=merged.not_sent,
            warmup_calls=merged.warmup_calls,
            error_rate=round(merged.failed / completed, 6) if completed else 0.0,
        ),
        rates=Rates(
            target_per_s=target,
            achieved_per_s=achieved,
            ok_per_s=round(merged.ok / sending_s, 3) if sending_s > 0 else 0.0,
            achieved_ratio=ratio,
        ),
        latency_ms=LatencySummary.of(percentiles(merged.latency)),
        service_time_ms=LatencySummary.of(percentiles(merged.service)),
        start_lag_ms=LatencySummary.of(percentiles(merged.start_lag)),
        late_starts=LateStarts(
            threshold_ms=round(merged.late_threshold_s * 1000, 3),
            total=merged.late,
            generator=merged.late_generator,
            concurrency_limit=merged.late_concurrency_limit,
        ),
        generator=GeneratorInfo(
            limited=verdict.limited,
            reason=verdict.reason,
            processes=len(merged.cpu_utilization),
            cpu_utilization=[round(c, 3) for c in merged.cpu_utilization],
        ),
        timeline=_timeline(merged, sending_s if closed or cut else scenario.duration_s),
        verification=verification,
        verification_error=verification_error,
        thresholds=thresholds or ThresholdSummary(passed=True, results=[]),
        latency_hdr=merged.latency.encode().decode(),
        interrupted=interrupted,
        measured_s=round(sending_s, 3),
    )
