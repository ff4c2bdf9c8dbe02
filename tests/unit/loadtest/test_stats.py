import pytest

from hello_loadtest.stats import (
    Recorder,
    generator_verdict,
    interval_for,
    merge,
    new_histogram,
    percentiles,
    to_us,
)

from .hdr import hdr


def test_percentiles_of_one_to_a_thousand_microseconds_are_exact():
    hist = new_histogram()
    for us in range(1, 1001):
        hist.record_value(us)
    p = percentiles(hist)
    assert (p.count, p.min) == (1000, 0.001)
    assert p.mean == pytest.approx(0.5005, abs=0.001)  # rounded to the microsecond
    assert (p.p50, p.p90, p.p99, p.p999, p.max) == (0.5, 0.9, 0.99, 0.999, 1.0)


def test_percentiles_report_the_slow_tail_of_a_skewed_distribution():
    hist = new_histogram()
    hist.record_value(2_000, 990)  # 990 calls at 2 ms
    hist.record_value(40_000, 9)  # 9 at 40 ms
    hist.record_value(1_000_000, 1)  # one at 1 s
    p = percentiles(hist)
    assert p.p50 == 2.0
    assert p.p99 == 2.0
    assert p.p999 == hdr(40.0)
    assert p.max == hdr(1000.0)
    assert p.max >= 1000.0  # a bucket top: never below the value


def test_an_empty_histogram_reports_zeros():
    assert percentiles(new_histogram()).p99 == 0.0


def test_values_outside_the_histogram_range_are_clamped():
    assert to_us(0) == 1
    assert to_us(0.0025) == 2500
    assert to_us(10**9) == 3_600_000_000


def test_timeline_intervals_widen_for_runs_longer_than_600_seconds():
    assert interval_for(3) == 1
    assert interval_for(600) == 1
    assert interval_for(601) == 2
    assert interval_for(3600) == 6


def test_recorder_measures_latency_from_the_scheduled_start_not_the_actual_one():
    rec = Recorder(late_threshold_s=0.005)
    rec.record_scheduled(1.0)
    assert rec.record_start(1.0, 1.1, "generator") is True
    rec.record_end(1.0, 1.1, 1.102, "OK", "id-1")
    assert percentiles(rec.latency).p50 == hdr(102.0)
    assert percentiles(rec.service).p50 == 2.0
    assert percentiles(rec.start_lag).p50 == hdr(100.0)
    assert (rec.late_generator, rec.late_concurrency_limit) == (1, 0)


def test_a_start_within_the_late_threshold_is_on_time():
    rec = Recorder(late_threshold_s=0.005)
    assert rec.record_start(1.0, 1.004, "generator") is False
    assert rec.record_start(1.0, 1.006, "concurrency_limit") is True
    assert (rec.late_generator, rec.late_concurrency_limit) == (0, 1)


def test_warmup_calls_are_counted_apart_and_kept_out_of_the_statistics():
    rec = Recorder(warmup_s=1.0, keep_ids=True)
    for at in (0.5, 1.5):
        rec.record_scheduled(at)
        rec.record_start(at, at, "generator")
        rec.record_end(at, at, at + 0.01, "OK", f"id-{at}")
    assert (rec.scheduled, rec.sent, rec.ok, rec.warmup_calls) == (1, 1, 1, 1)
    assert rec.latency.get_total_count() == 1
    # Verification must expect both: the warm-up call was really sent.
    assert rec.ok_ids == ["id-0.5", "id-1.5"]
    assert list(rec.intervals) == [0]


def test_failures_are_counted_by_status_code_and_not_timed():
    rec = Recorder()
    for code in ("OK", "UNAVAILABLE", "UNAVAILABLE", "DEADLINE_EXCEEDED"):
        rec.record_start(0.1, 0.1, "generator")
        rec.record_end(0.1, 0.1, 0.2, code)
    assert rec.ok == 1
    assert dict(rec.failed_by_code) == {"UNAVAILABLE": 2, "DEADLINE_EXCEEDED": 1}
    assert rec.latency.get_total_count() == 1


def test_timeline_buckets_by_scheduled_second_after_warmup():
    rec = Recorder(warmup_s=2.0, interval_s=1)
    for at in (2.1, 2.9, 3.5):
        rec.record_scheduled(at)
        rec.record_start(at, at + 0.5, "generator")
        rec.record_end(at, at + 0.5, at + 0.6, "OK")
    assert rec.intervals[0].target == 2
    assert rec.intervals[1].target == 1
    # 2.9 + 0.5 started in the second measured second.
    assert (rec.intervals[0].sent, rec.intervals[1].sent, rec.intervals[2].sent) == (1, 1, 1)
    assert rec.intervals[0].late == 2


def test_merging_exports_adds_counts_and_histograms():
    a, b = Recorder(keep_ids=True), Recorder(keep_ids=True)
    for rec, latency, code, mid in (
        (a, 0.001, "OK", "x"),
        (b, 0.003, "OK", "y"),
        (b, 0, "UNAVAILABLE", None),
    ):
        rec.record_scheduled(0.1)
        rec.record_start(0.1, 0.1, "generator")
        rec.record_end(0.1, 0.1, 0.1 + latency, code, mid)
    a.cpu_utilization, b.cpu_utilization = 0.25, 0.5
    merged = merge([a.export(), b.export()])
    assert (merged.scheduled, merged.sent, merged.ok, merged.failed) == (3, 3, 2, 1)
    assert merged.failed_by_code == {"UNAVAILABLE": 1}
    assert percentiles(merged.latency).max == hdr(3.0)
    assert percentiles(merged.latency).min == 1.0
    assert merged.intervals[0].ok == 2
    assert sorted(merged.ok_ids) == ["x", "y"]
    assert merged.cpu_utilization == [0.25, 0.5]


def test_merge_refuses_exports_with_different_interval_widths():
    with pytest.raises(ValueError, match="interval"):
        merge([Recorder(interval_s=1).export(), Recorder(interval_s=2).export()])


def test_generator_is_the_limit_when_over_one_percent_of_calls_start_late_on_its_account():
    verdict = generator_verdict(sent=1000, late_generator=11, achieved_ratio=1.0, cpu=[0.3])
    assert verdict.limited
    assert "1.1% of calls" in (verdict.reason or "")
    assert not generator_verdict(
        sent=1000, late_generator=10, achieved_ratio=1.0, cpu=[0.3]
    ).limited


def test_generator_is_the_limit_when_a_saturated_worker_misses_the_target_rate():
    assert generator_verdict(
        sent=100, late_generator=0, achieved_ratio=0.9, cpu=[0.2, 0.95]
    ).limited
    assert not generator_verdict(sent=100, late_generator=0, achieved_ratio=0.9, cpu=[0.5]).limited
    assert not generator_verdict(sent=100, late_generator=0, achieved_ratio=None, cpu=[1.0]).limited


def test_the_live_window_holds_calls_since_it_was_last_taken_including_warmup():
    rec = Recorder(warmup_s=1.0)
    rec.record_end(0.5, 0.5, 0.502, "OK")
    rec.record_end(1.5, 1.5, 1.504, "UNAVAILABLE")
    completed, encoded = rec.take_window()
    window = new_histogram(2)
    window.decode_and_add(encoded)
    assert (completed, window.get_total_count()) == (2, 1)
    assert percentiles(window).max == pytest.approx(2.0, rel=0.01)  # two figures
    assert rec.take_window()[0] == 0
