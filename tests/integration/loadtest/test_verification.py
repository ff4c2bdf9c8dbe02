"""Verification mode against a real broker: the real pipeline, and a faulty stand-in."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_every_call_to_the_real_pipeline_is_delivered_exactly_once(pipeline, hello_load):
    run = hello_load(
        "constant", "--rate", "50", "--duration", "3s", "--target", pipeline.api_target,
        "--verify", "--bootstrap-servers", pipeline.bootstrap_servers,
        "--output-topic", pipeline.output_topic,
        "--max-lost", "0", "--max-duplicates", "0", "--max-error-rate", "0",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr + run.stdout
    requests, verification = run.report["requests"], run.report["verification"]
    assert requests["sent"] == requests["ok"] == 150
    assert verification["expected"] == 150
    assert verification["lost"] == 0
    assert verification["duplicates"] == 0
    assert verification["timed_out"] is False
    assert verification["e2e_latency_ms"]["count"] == 150
    assert all(r["passed"] for r in run.report["thresholds"]["results"])


def test_an_unmet_end_to_end_gate_on_the_real_pipeline_exits_one(pipeline, hello_load):
    run = hello_load(
        "constant", "-r", "20", "-d", "1s", "-t", pipeline.api_target,
        "--verify", "--bootstrap-servers", pipeline.bootstrap_servers,
        "--output-topic", pipeline.output_topic,
        "--max-e2e-p99-ms", "0", "--max-lost", "0",
    )  # fmt: skip
    assert run.returncode == 1
    results = {r["name"]: r["passed"] for r in run.report["thresholds"]["results"]}
    assert results == {"max_e2e_p99_ms": False, "max_lost": True}


def test_dropped_and_duplicated_greetings_are_counted_and_fail_the_gates(
    fake_pipeline_factory, kafka, hello_load
):
    server, topic = fake_pipeline_factory("--drop-every", "10", "--duplicate-every", "7")
    run = hello_load(
        "constant", "-r", "70", "-d", "1s", "-t", server.address,
        "--verify", "--bootstrap-servers", kafka.bootstrap_servers, "--output-topic", topic,
        "--verify-timeout", "5s", "--max-lost", "0",
    )  # fmt: skip
    assert run.returncode == 1
    verification = run.report["verification"]
    # Calls 1..70: every 10th is dropped (7); of the rest every 7th is doubled
    # (7, 14, ..., 70 less 70, which was dropped: 9).
    assert verification["lost"] == 7
    assert verification["duplicates"] == 9
    assert verification["timed_out"] is True


def test_a_clean_stand_in_passes_the_delivery_gates(fake_pipeline_factory, kafka, hello_load):
    server, topic = fake_pipeline_factory()
    run = hello_load(
        "constant", "-r", "40", "-d", "1s", "-t", server.address,
        "--verify", "--bootstrap-servers", kafka.bootstrap_servers, "--output-topic", topic,
        "--max-lost", "0", "--max-duplicates", "0", "--max-e2e-p99-ms", "100",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.report["verification"]["received"] == 40
    # The stand-in stamps processed_at = produced_at + 3 ms.
    assert run.report["verification"]["e2e_latency_ms"]["max_ms"] == pytest.approx(3.0, rel=0.001)
