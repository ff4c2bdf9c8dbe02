import pytest

from hello_loadtest.thresholds import (
    EXIT_OK,
    EXIT_THRESHOLDS_FAILED,
    Thresholds,
    evaluate,
    exit_code,
    with_thresholds,
)

from .reports import sample_report


def test_no_thresholds_pass_and_exit_zero():
    report = with_thresholds(sample_report(), Thresholds())
    assert report.thresholds.passed
    assert report.thresholds.results == []
    assert exit_code(report) == EXIT_OK


@pytest.mark.parametrize(
    ("thresholds", "passed"),
    [
        # 18 OK calls of 1..18 ms: p99 is 18 ms and p50 9 ms (bucket tops, +0.1%).
        (Thresholds(max_p99_ms=19), True),
        (Thresholds(max_p99_ms=18.02), True),
        (Thresholds(max_p99_ms=17.9), False),
        (Thresholds(max_p50_ms=9.01), True),
        (Thresholds(max_p50_ms=8.99), False),
        (Thresholds(max_error_rate=0.1), True),
        (Thresholds(max_error_rate=0.09), False),
        (Thresholds(min_achieved_ratio=1.0), True),
        (Thresholds(max_late_fraction=0), True),
    ],
)
def test_limits_compare_inclusively_against_the_report(thresholds, passed):
    report = with_thresholds(sample_report(failures=2), thresholds)
    assert report.thresholds.passed is passed
    assert exit_code(report) == (EXIT_OK if passed else EXIT_THRESHOLDS_FAILED)


def test_each_failed_limit_is_listed_with_its_actual_value():
    summary = evaluate(
        sample_report(failures=2, lost=3), Thresholds(max_p99_ms=100, max_lost=0, max_duplicates=0)
    )
    by_name = {r.name: r for r in summary.results}
    assert by_name["max_lost"].actual == 3
    assert by_name["max_lost"].passed is False
    assert by_name["max_duplicates"].passed is True
    assert by_name["max_p99_ms"].passed is True
    assert summary.passed is False


def test_a_limit_on_verification_fails_when_the_run_was_not_verified():
    summary = evaluate(sample_report(verify=False), Thresholds(max_lost=0))
    assert summary.results[0].actual is None
    assert summary.passed is False


def test_end_to_end_latency_limit_reads_the_verification_percentiles():
    assert evaluate(sample_report(), Thresholds(max_e2e_p99_ms=7.01)).passed
    assert not evaluate(sample_report(), Thresholds(max_e2e_p99_ms=6.99)).passed


def test_latency_limits_fail_when_no_call_succeeded():
    report = with_thresholds(
        sample_report(failures=20), Thresholds(max_p50_ms=5, max_p99_ms=5, max_p999_ms=5)
    )
    assert report.latency_ms.count == 0
    assert report.latency_ms.p99_ms is None
    assert [(r.name, r.actual, r.passed) for r in report.thresholds.results] == [
        ("max_p50_ms", None, False),
        ("max_p99_ms", None, False),
        ("max_p999_ms", None, False),
    ]
    assert exit_code(report) == EXIT_THRESHOLDS_FAILED


def test_the_e2e_limit_fails_when_nothing_was_received():
    report = with_thresholds(sample_report(lost=20), Thresholds(max_e2e_p99_ms=5))
    assert report.verification is not None
    assert report.verification.e2e_latency_ms.count == 0
    assert report.verification.e2e_latency_ms.p99_ms is None
    assert report.thresholds.results[0].actual is None
    assert report.thresholds.passed is False
