"""execute() with --verify: Kafka checked before the load, the run kept if reading fails after."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import hello_loadtest.cli as cli
import hello_loadtest.execute as execute_module
from hello_core.settings import KafkaSettings
from hello_loadtest.execute import VerifyOptions, execute
from hello_loadtest.kafka_reader import VerificationError
from hello_loadtest.runner import RunResult
from hello_loadtest.schedule import constant
from hello_loadtest.stats import Recorder, merge
from hello_loadtest.thresholds import Thresholds
from hello_loadtest.worker import Target, WorkerPlan

VERIFY = VerifyOptions(KafkaSettings(bootstrap_servers="127.0.0.1:1"), "greetings", 1.0)


class FakeReader:
    def __init__(self, *, mark_fails: bool = False, read_fails: bool = False) -> None:
        self.mark_fails, self.read_fails = mark_fails, read_fails
        self.closed = False

    def __call__(self, *_: object) -> FakeReader:
        return self

    def mark(self) -> None:
        if self.mark_fails:
            raise VerificationError("cannot reach Kafka: timed out")

    def read(self, *_: object, **__: object):
        if self.read_fails:
            raise VerificationError("cannot reach Kafka: broker down")
        return [], False, 0.1

    def close(self) -> None:
        self.closed = True


def fake_run(calls: list[str]):
    def run(plan, target, **_):
        calls.append("run")
        rec = Recorder(keep_ids=True)
        for k in range(10):
            rec.record_scheduled(k * 0.1)
            rec.record_start(k * 0.1, k * 0.1, "generator")
            rec.record_end(k * 0.1, k * 0.1, k * 0.1 + 0.002, "OK", f"id{k}")
        return RunResult(merge([rec.export()]), "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z")

    return run


def plan() -> WorkerPlan:
    return WorkerPlan(scenario=constant(10, 1), workers=1)


def test_kafka_unreachable_before_the_run_fails_fast_without_sending(monkeypatch):
    calls: list[str] = []
    reader = FakeReader(mark_fails=True)
    monkeypatch.setattr(execute_module, "GreetingReader", reader)
    monkeypatch.setattr(execute_module, "run", fake_run(calls))
    with pytest.raises(VerificationError, match="checked before the run, no load was sent"):
        execute(plan(), Target("127.0.0.1:1"), verify=VERIFY)
    assert calls == []
    assert reader.closed


def test_verification_failing_after_the_run_keeps_the_report(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(execute_module, "GreetingReader", FakeReader(read_fails=True))
    monkeypatch.setattr(execute_module, "run", fake_run(calls))
    report = execute(
        plan(), Target("127.0.0.1:1"), verify=VERIFY, thresholds=Thresholds(max_lost=0)
    )
    assert calls == ["run"]
    assert report.requests.ok == 10
    assert report.verification is None
    assert report.verification_error == "cannot reach Kafka: broker down"
    assert report.thresholds.passed is False


def test_the_cli_writes_the_report_and_exits_3_when_verification_fails_after_the_run(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(execute_module, "GreetingReader", FakeReader(read_fails=True))
    monkeypatch.setattr(execute_module, "run", fake_run([]))
    path = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli.main,
        ["constant", "-r", "10", "-d", "1s", "-t", "127.0.0.1:1", "--verify",
         "--bootstrap-servers", "127.0.0.1:1", "--json-report", str(path), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "verification failed: cannot reach Kafka: broker down" in result.output
    document = json.loads(path.read_text())
    assert document["verification"] is None
    assert document["verification_error"] == "cannot reach Kafka: broker down"
    assert document["requests"]["ok"] == 10
