"""Reports built from hand-made recordings, shared by the report and threshold tests."""

from __future__ import annotations

from hello_loadtest.report import (
    Report,
    RunConfig,
    build_report,
    scenario_info,
    verification_section,
)
from hello_loadtest.schedule import constant
from hello_loadtest.stats import Recorder, merge
from hello_loadtest.verify import Delivered, reconcile


def run_config() -> RunConfig:
    return RunConfig(
        target="127.0.0.1:50051",
        tls=False,
        deadline_ms=1000,
        max_in_flight=100,
        processes=1,
        connections=1,
        names="sequence",
        late_threshold_ms=5,
    )


def sample_report(*, failures: int = 0, lost: int = 0, verify: bool = True) -> Report:
    """10 calls/s for 2 s; call k takes (k + 1) ms; the last ``failures`` fail."""
    scenario = constant(10, 2)
    rec = Recorder(keep_ids=True)
    for k in range(20):
        at = 0.05 + k * 0.1
        rec.record_scheduled(at)
        rec.record_start(at, at, "generator")
        code = "UNAVAILABLE" if k >= 20 - failures else "OK"
        rec.record_end(at, at, at + (k + 1) / 1000, code, f"id{k}")
    rec.cpu_utilization = 0.1
    merged = merge([rec.export()])
    verification = None
    if verify:
        delivered = [Delivered(i, 1000, 1007) for i in merged.ok_ids[lost:]]
        verification = verification_section(
            reconcile(merged.ok_ids, delivered), topic="greetings", timed_out=False, waited_s=0.5
        )
    return build_report(
        merged,
        scenario=scenario_info(scenario, "uniform"),
        config=run_config(),
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:02Z",
        verification=verification,
    )
