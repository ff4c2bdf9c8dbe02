"""One load test from start to report: verification set-up, the run, the report.

Used by the CLI and by the benchmark; prints nothing itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from hello_core.settings import KafkaSettings
from hello_loadtest.kafka_reader import GreetingReader, VerificationError
from hello_loadtest.report import (
    Report,
    RunConfig,
    build_report,
    scenario_info,
    verification_section,
)
from hello_loadtest.runner import RunResult, Tick, run
from hello_loadtest.thresholds import Thresholds, with_thresholds
from hello_loadtest.verify import reconcile
from hello_loadtest.worker import Target, WorkerPlan

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    kafka: KafkaSettings
    topic: str = "greetings"
    timeout_s: float = 30.0
    # After the last expected id, keep reading this long for duplicates.
    settle_s: float = 1.0


def execute(
    plan: WorkerPlan,
    target: Target,
    *,
    verify: VerifyOptions | None = None,
    thresholds: Thresholds | None = None,
    on_start: Callable[[float], None] | None = None,
    on_tick: Callable[[Tick], None] | None = None,
    on_stop: Callable[[float], None] | None = None,
) -> Report:
    """Run ``plan``; with ``verify``, Kafka is checked before any call is sent.

    Kafka unreachable before the run raises ``VerificationError`` (no load was
    sent). Verification failing after the run does not lose the run: the
    report has ``verification`` null and ``verification_error`` set.
    A run stopped by Ctrl-C (see ``runner``) is reported, and verified, on
    what it sent; the report says ``interrupted``.
    """
    reader = None
    if verify is not None:
        reader = GreetingReader(verify.kafka, verify.topic)
        try:
            reader.mark()
        except VerificationError as exc:
            reader.close()
            raise VerificationError(
                f"{exc} (bootstrap servers {verify.kafka.bootstrap_servers}); "
                "checked before the run, no load was sent"
            ) from exc
        plan = replace(plan, keep_ids=True)
    verification_error = None
    try:
        result: RunResult = run(plan, target, on_start=on_start, on_tick=on_tick, on_stop=on_stop)
        for error in result.connect_errors:
            logger.warning("worker could not connect before the start error=%s", error)
        verification = None
        if reader is not None and verify is not None:
            try:
                records, timed_out, waited = reader.read(
                    set(result.merged.ok_ids),
                    timeout_s=verify.timeout_s,
                    settle_s=verify.settle_s,
                )
            except VerificationError as exc:
                logger.error("verification failed after the run error=%s", exc)
                verification_error = str(exc)
            else:
                verification = verification_section(
                    reconcile(result.merged.ok_ids, records),
                    topic=verify.topic,
                    timed_out=timed_out,
                    waited_s=waited,
                )
    finally:
        if reader is not None:
            reader.close()
    report = build_report(
        result.merged,
        scenario=scenario_info(plan.scenario, plan.arrivals),
        config=RunConfig(
            target=target.address,
            tls=target.tls,
            deadline_ms=plan.deadline_s * 1000,
            max_in_flight=plan.max_in_flight,
            processes=plan.workers,
            connections=plan.connections,
            names=plan.names,
            late_threshold_ms=plan.late_threshold_s * 1000,
        ),
        started_at=result.started_at,
        finished_at=result.finished_at,
        verification=verification,
        verification_error=verification_error,
        interrupted=result.interrupted,
    )
    return with_thresholds(report, thresholds or Thresholds())
