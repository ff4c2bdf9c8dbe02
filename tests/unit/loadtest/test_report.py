import json
import pathlib

import jsonschema
import pytest

from hello_loadtest.report import Report, build_report, scenario_info, schema_text
from hello_loadtest.schedule import constant
from hello_loadtest.stats import Recorder, merge

from .hdr import hdr
from .reports import run_config, sample_report

SCHEMA_FILE = pathlib.Path(__file__).parents[3] / "loadtest" / "report.schema.json"


def test_report_counts_rates_and_percentiles_follow_from_the_recorded_calls():
    report = sample_report(failures=2)
    assert report.requests.model_dump() == {
        "scheduled": 20,
        "sent": 20,
        "ok": 18,
        "failed": 2,
        "failed_by_code": {"UNAVAILABLE": 2},
        "not_sent": 0,
        "warmup_calls": 0,
        "error_rate": 0.1,
    }
    assert (report.rates.target_per_s, report.rates.achieved_per_s) == (10.0, 10.0)
    assert report.rates.ok_per_s == 9.0
    assert report.rates.achieved_ratio == 1.0
    assert (report.latency_ms.min_ms, report.latency_ms.max_ms) == (1.0, hdr(18.0))
    assert report.latency_ms.p50_ms == hdr(9.0)
    # HDR ranks by round(p * n): 0.9 * 18 = 16.2 -> the 16th value.
    assert report.latency_ms.p90_ms == hdr(16.0)
    assert [p.target for p in report.timeline.points] == [10, 10]
    assert [p.ok for p in report.timeline.points] == [10, 8]
    # Timeline histograms keep two significant figures: up to 1% above.
    assert report.timeline.points[1].max_ms == pytest.approx(18.0, rel=0.01)
    assert report.generator.limited is False
    assert report.verification is not None
    assert report.verification.e2e_latency_ms.p99_ms == hdr(7.0)


def test_the_committed_json_schema_matches_the_report_models():
    # Regenerate with: hello-load schema > loadtest/report.schema.json
    assert SCHEMA_FILE.read_text() == schema_text()


@pytest.mark.parametrize("verify", [True, False])
def test_a_report_validates_against_the_committed_json_schema(verify):
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    document = json.loads(sample_report(verify=verify).model_dump_json())
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def test_the_schema_rejects_a_report_missing_a_field_or_with_a_wrong_type():
    schema = json.loads(SCHEMA_FILE.read_text())
    document = json.loads(sample_report().model_dump_json())
    del document["requests"]["ok"]
    with pytest.raises(jsonschema.ValidationError, match="'ok' is a required property"):
        jsonschema.validate(document, schema)
    document = json.loads(sample_report().model_dump_json())
    document["schema_version"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_a_report_survives_a_json_round_trip():
    report = sample_report()
    assert Report.model_validate_json(report.model_dump_json()) == report


def test_the_timeline_covers_the_whole_duration_even_when_the_end_was_idle():
    report = sample_report()
    assert [p.t_s for p in report.timeline.points] == [0, 1]
    # The sample's 20 calls all sit in the first 2 s of 2 s; pad it with idle time.
    longer = build_report(
        merge([Recorder().export()]),
        scenario=scenario_info(constant(10, 3), "uniform"),
        config=run_config(),
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:03Z",
    )
    assert [p.t_s for p in longer.timeline.points] == [0, 1, 2]
    assert all(p.sent == 0 for p in longer.timeline.points)


def test_a_report_from_a_newer_tool_with_extra_fields_still_loads_and_validates():
    document = json.loads(sample_report().model_dump_json())
    document["added_later"] = {"anything": 1}
    document["requests"]["retried"] = 3
    jsonschema.validate(document, json.loads(SCHEMA_FILE.read_text()))
    assert Report.model_validate(document).requests.ok == 20


def test_a_run_without_ok_calls_has_null_latencies_that_validate_and_render():
    from hello_loadtest.render import plot_png, summary_tables

    report = sample_report(failures=20, lost=0)
    document = json.loads(report.model_dump_json())
    assert document["latency_ms"] == {
        "count": 0,
        "min_ms": None,
        "mean_ms": None,
        "p50_ms": None,
        "p90_ms": None,
        "p99_ms": None,
        "p999_ms": None,
        "max_ms": None,
    }
    assert document["service_time_ms"]["p99_ms"] is None
    assert document["start_lag_ms"]["count"] == 20
    assert all(
        (p["p50_ms"], p["p99_ms"], p["max_ms"]) == (None, None, None)
        for p in document["timeline"]["points"]
    )
    jsonschema.validate(
        document, json.loads(SCHEMA_FILE.read_text()), cls=jsonschema.Draft202012Validator
    )
    assert Report.model_validate(document) == report
    assert summary_tables(report)
    assert plot_png(report).startswith(b"\x89PNG")


def test_timeline_points_without_ok_calls_have_null_latency():
    report = sample_report(failures=10)  # the second second's calls all failed
    first, second = report.timeline.points
    assert first.p99_ms == pytest.approx(10, rel=0.01)
    assert (second.p50_ms, second.p99_ms, second.max_ms) == (None, None, None)


def test_closed_with_max_calls_rates_cover_the_time_the_calls_took():
    from hello_loadtest.schedule import ClosedScenario

    scenario = ClosedScenario(2, 10, max_calls=20)
    rec = Recorder()
    for k in range(20):  # 20 calls of 10 ms, two at a time: 0.1 s in all
        at = (k // 2) * 0.01
        rec.record_start(at, at, "generator")
        rec.record_end(at, at, at + 0.01, "OK")
    report = build_report(
        merge([rec.export()]),
        scenario=scenario_info(scenario, "uniform"),
        config=run_config(),
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:00.1Z",
    )
    assert report.rates.achieved_per_s == pytest.approx(200, rel=0.01)
    assert report.rates.ok_per_s == pytest.approx(200, rel=0.01)
    assert report.scenario.params == {"concurrency": 2, "duration_s": 10.0, "max_calls": 20}
    document = json.loads(report.model_dump_json())
    assert isinstance(document["scenario"]["params"]["concurrency"], int)
    assert isinstance(document["scenario"]["params"]["max_calls"], int)
    assert len(report.timeline.points) == 1


def test_closed_without_max_calls_keeps_the_nominal_duration():
    from hello_loadtest.schedule import ClosedScenario

    rec = Recorder()
    rec.record_start(0.0, 0.0, "generator")
    rec.record_end(0.0, 0.0, 0.01, "OK")
    report = build_report(
        merge([rec.export()]),
        scenario=scenario_info(ClosedScenario(1, 2), "uniform"),
        config=run_config(),
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:02Z",
    )
    assert report.rates.achieved_per_s == 0.5
    assert report.scenario.params == {"concurrency": 1, "duration_s": 2}
    assert len(report.timeline.points) == 2


def _interrupted_report(stopped_s: float | None, *, warmup_s: float = 0.0) -> Report:
    """10 calls/s for a nominal 60 s, stopped by Ctrl-C at ``stopped_s`` (run time)."""
    scenario = constant(10, 60, warmup_s=warmup_s)
    rec = Recorder(warmup_s=warmup_s)
    k = 0
    while stopped_s is not None and (at := 0.05 + k * 0.1) < stopped_s:
        rec.record_scheduled(at)
        rec.record_start(at, at, "generator")
        rec.record_end(at, at, at + 0.002, "OK")
        k += 1
    rec.stopped_s = stopped_s
    return build_report(
        merge([rec.export()]),
        scenario=scenario_info(scenario, "uniform"),
        config=run_config(),
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:03Z",
        interrupted=True,
    )


def test_an_interrupted_report_covers_the_time_up_to_the_stop():
    report = _interrupted_report(2.5)
    assert report.interrupted is True
    assert report.measured_s == 2.5
    assert report.scenario.duration_s == 60
    assert (report.requests.scheduled, report.requests.sent) == (25, 25)
    assert report.rates.model_dump() == {
        "target_per_s": 10.0,
        "achieved_per_s": 10.0,
        "ok_per_s": 10.0,
        "achieved_ratio": 1.0,
    }
    assert [p.target for p in report.timeline.points] == [10, 10, 5]
    jsonschema.validate(
        json.loads(report.model_dump_json()),
        json.loads(SCHEMA_FILE.read_text()),
        cls=jsonschema.Draft202012Validator,
    )


def test_an_interrupt_during_warmup_measures_nothing_and_still_validates():
    report = _interrupted_report(0.4, warmup_s=1.0)
    assert report.measured_s == 0.0
    assert (report.requests.scheduled, report.requests.warmup_calls) == (0, 4)
    assert (report.rates.target_per_s, report.rates.achieved_per_s) == (None, 0.0)
    assert report.timeline.points == []
    jsonschema.validate(json.loads(report.model_dump_json()), json.loads(SCHEMA_FILE.read_text()))


def test_a_run_that_was_not_interrupted_says_so_and_measures_its_duration():
    report = sample_report()
    assert (report.interrupted, report.measured_s) == (False, 2.0)


def test_a_report_from_before_the_interrupted_field_still_validates_and_loads():
    document = json.loads(sample_report().model_dump_json())
    del document["interrupted"], document["measured_s"]
    jsonschema.validate(
        document, json.loads(SCHEMA_FILE.read_text()), cls=jsonschema.Draft202012Validator
    )
    loaded = Report.model_validate(document)
    assert (loaded.interrupted, loaded.measured_s) == (False, None)
