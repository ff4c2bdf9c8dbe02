"""The CLI end to end against the bare echo server (no Kafka)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from hello_dev.ports import free_port

from .conftest import REPO

SCHEMA = json.loads((REPO / "loadtest" / "report.schema.json").read_text())


def test_constant_rate_run_sends_every_scheduled_call_and_writes_all_reports(
    echo_server, hello_load, tmp_path
):
    html, png = tmp_path / "r.html", tmp_path / "r.png"
    run = hello_load(
        "constant", "--rate", "50", "--duration", "3s", "--target", echo_server.address,
        "--html-report", str(html), "--png", str(png),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = run.report
    jsonschema.validate(report, SCHEMA)
    requests = report["requests"]
    assert requests["scheduled"] == 150
    assert requests["sent"] == requests["ok"] == 150
    assert requests["failed"] == 0
    assert report["rates"]["target_per_s"] == 50.0
    assert report["latency_ms"]["count"] == 150
    assert sum(p["target"] for p in report["timeline"]["points"]) == 150
    assert png.read_bytes().startswith(b"\x89PNG")
    page = html.read_text()
    assert "data:image/png;base64," in page
    assert "<caption>latency (ms)</caption>" in page
    assert "scheduled" in run.stdout  # the summary table


def test_an_unmet_p99_threshold_exits_one_and_a_met_one_exits_zero(echo_server, hello_load):
    failing = hello_load(
        "constant", "-r", "20", "-d", "1s", "-t", echo_server.address, "--max-p99-ms", "0.001"
    )
    assert failing.returncode == 1
    assert failing.report["thresholds"]["passed"] is False
    assert failing.report["thresholds"]["results"][0]["name"] == "max_p99_ms"
    passing = hello_load(
        "constant", "-r", "20", "-d", "1s", "-t", echo_server.address, "--max-p99-ms", "10000"
    )
    assert passing.returncode == 0


def test_two_processes_share_one_schedule(echo_server, hello_load):
    run = hello_load(
        "ramp", "--from", "0", "--to", "100", "-d", "2s", "-t", echo_server.address, "-p", "2"
    )
    assert run.returncode == 0, run.stderr
    assert run.report["requests"]["sent"] == run.report["requests"]["ok"] == 100
    assert len(run.report["generator"]["cpu_utilization"]) == 2


def test_burst_sends_only_during_spikes_when_the_base_rate_is_zero(echo_server, hello_load):
    run = hello_load(
        "burst", "--spike-rate", "100", "--idle", "1s", "--spike", "0.5s", "--cycles", "2",
        "-t", echo_server.address,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.report["requests"]["ok"] == 100
    per_second = [p["target"] for p in run.report["timeline"]["points"]]
    assert per_second == [0, 50, 50, 0]


def test_warmup_calls_are_sent_but_left_out_of_the_counts(echo_server, hello_load):
    run = hello_load("constant", "-r", "20", "-d", "1s", "-w", "1s", "-t", echo_server.address)
    assert run.returncode == 0, run.stderr
    assert run.report["requests"]["warmup_calls"] == 20
    assert run.report["requests"]["sent"] == 20


def test_closed_model_reports_no_target_rate(echo_server, hello_load):
    run = hello_load(
        "closed", "-n", "4", "-d", "1s", "--max-calls", "200", "-t", echo_server.address
    )
    assert run.returncode == 0, run.stderr
    assert run.report["rates"]["target_per_s"] is None
    assert run.report["requests"]["ok"] == 200
    assert run.report["late_starts"]["total"] == 0


def test_closed_max_calls_rates_use_the_time_taken_not_the_nominal_duration(
    echo_server, hello_load
):
    run = hello_load(
        "closed", "-n", "4", "-d", "10s", "--max-calls", "200", "-t", echo_server.address
    )
    assert run.returncode == 0, run.stderr
    report = run.report
    assert report["requests"]["sent"] == 200
    params = report["scenario"]["params"]
    assert params == {"concurrency": 4, "duration_s": 10.0, "max_calls": 200}
    assert isinstance(params["max_calls"], int)
    # 200 calls to a local echo server take well under the nominal 10 s.
    assert report["rates"]["achieved_per_s"] > 200 / 9
    assert len(report["timeline"]["points"]) < 10


def test_a_target_with_nothing_listening_fails_every_call_and_the_error_gate(hello_load):
    address = f"127.0.0.1:{free_port()}"
    run = hello_load(
        "constant", "-r", "10", "-d", "1s", "-t", address, "--deadline", "200ms",
        "--max-error-rate", "0",
    )  # fmt: skip
    assert run.returncode == 1
    assert run.report["requests"]["ok"] == 0
    assert run.report["requests"]["failed_by_code"].keys() <= {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
    assert run.report["requests"]["failed"] == 10


@pytest.mark.parametrize("gate", ["--max-lost", "--max-duplicates", "--max-e2e-p99-ms"])
def test_delivery_gates_without_verification_are_a_usage_error(hello_load, gate):
    run = hello_load("constant", "-r", "1", "-d", "1s", gate, "0")
    assert run.returncode == 2
    assert f"{gate} needs --verify: it is read from the output topic." in run.stderr
    assert run.report is None
