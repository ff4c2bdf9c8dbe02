"""Pass/fail limits on a report, so a run can gate a pipeline.

A limit is met when the figure is at most (``max_*``) or at least (``min_*``)
the limit. A limit on a figure the run does not have (``max_lost`` without
verification) fails: a gate that cannot be checked must not pass silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from hello_loadtest.report import Report, ThresholdResult, ThresholdSummary

EXIT_OK = 0
EXIT_THRESHOLDS_FAILED = 1
EXIT_USAGE = 2  # click's own code for bad options
EXIT_RUN_FAILED = 3  # the run itself could not be carried out


def _late_fraction(report: Report) -> float | None:
    sent = report.requests.sent
    return report.late_starts.total / sent if sent else None


def _verified(pick: Callable[[Report], float | None]) -> Callable[[Report], float | None]:
    return lambda r: pick(r) if r.verification is not None else None


# name -> (figure, whether the limit is an upper bound)
_FIGURES: dict[str, tuple[Callable[[Report], float | None], bool]] = {
    "max_p50_ms": (lambda r: r.latency_ms.p50_ms, True),
    "max_p99_ms": (lambda r: r.latency_ms.p99_ms, True),
    "max_p999_ms": (lambda r: r.latency_ms.p999_ms, True),
    "max_error_rate": (lambda r: r.requests.error_rate, True),
    "max_late_fraction": (_late_fraction, True),
    "min_achieved_ratio": (lambda r: r.rates.achieved_ratio, False),
    "max_lost": (_verified(lambda r: r.verification.lost), True),  # type: ignore[union-attr]
    "max_duplicates": (
        _verified(lambda r: r.verification.duplicates),  # type: ignore[union-attr]
        True,
    ),
    "max_e2e_p99_ms": (
        _verified(lambda r: r.verification.e2e_latency_ms.p99_ms),  # type: ignore[union-attr]
        True,
    ),
}

NEEDS_VERIFICATION = frozenset({"max_lost", "max_duplicates", "max_e2e_p99_ms"})


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_p50_ms: float | None = None
    max_p99_ms: float | None = None
    max_p999_ms: float | None = None
    max_error_rate: float | None = None
    max_late_fraction: float | None = None
    min_achieved_ratio: float | None = None
    max_lost: float | None = None
    max_duplicates: float | None = None
    max_e2e_p99_ms: float | None = None

    def set(self) -> dict[str, float]:
        """The limits that were given, by name."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}


def evaluate(report: Report, thresholds: Thresholds) -> ThresholdSummary:
    results = []
    for name, limit in thresholds.set().items():
        figure, upper = _FIGURES[name]
        actual = figure(report)
        if actual is None:
            passed = False
        elif upper:
            passed = actual <= limit
        else:
            passed = actual >= limit
        results.append(ThresholdResult(name=name, limit=limit, actual=actual, passed=passed))
    return ThresholdSummary(passed=all(r.passed for r in results), results=results)


def with_thresholds(report: Report, thresholds: Thresholds) -> Report:
    return report.model_copy(update={"thresholds": evaluate(report, thresholds)})


def exit_code(report: Report) -> int:
    return EXIT_OK if report.thresholds.passed else EXIT_THRESHOLDS_FAILED
