"""Ctrl-C during a run: the report of what was measured, then exit 130."""

from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import jsonschema
import pytest

from .conftest import REPO

SCHEMA = json.loads((REPO / "loadtest" / "report.schema.json").read_text())
RATE = 50


@dataclass
class CountingServer:
    address: str
    process: subprocess.Popen[str]

    def received(self) -> int:
        """Stop the server and return how many calls reached it."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=10)
        line = out.strip().splitlines()[-1]
        assert line.startswith("received="), out
        return int(line.removeprefix("received="))


def _counting_server(delay_s: float) -> Iterator[CountingServer]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.loadtest.counting_server", "--delay",
         str(delay_s)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"server did not print its port (exit code {proc.poll()})"
        yield CountingServer(f"127.0.0.1:{port}", proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture
def slow_server() -> Iterator[CountingServer]:
    """Answers after 0.2 s, so about ten calls are in flight at 50 calls/s."""
    yield from _counting_server(0.2)


@pytest.fixture
def stuck_server() -> Iterator[CountingServer]:
    """Answers after 8 s: calls are still in flight long after a Ctrl-C."""
    yield from _counting_server(8.0)


def _start_load(target: str, tmp_path: pathlib.Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hello_loadtest", "constant", "-r", str(RATE), "-d", "60s",
         "-p", "2", "-t", target, "--no-progress",
         "--json-report", str(tmp_path / "report.json"),
         "--html-report", str(tmp_path / "report.html"), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Its own process group, signalled as a terminal's Ctrl-C signals one.
        start_new_session=True,
    )  # fmt: skip


def test_first_ctrl_c_waits_for_calls_in_flight_and_writes_an_interrupted_report(
    slow_server: CountingServer, tmp_path: pathlib.Path
) -> None:
    proc = _start_load(slow_server.address, tmp_path, "--max-p99-ms", "0.001")
    time.sleep(5)  # the workers start a second or two in; then calls flow
    os.killpg(proc.pid, signal.SIGINT)
    began = time.monotonic()
    stdout, stderr = proc.communicate(timeout=30)
    waited = time.monotonic() - began
    received = slow_server.received()

    assert proc.returncode == 130, stderr
    assert waited < 8  # the 1 s call deadline plus the workers' exit, not the 60 s schedule
    assert "Traceback" not in stderr
    assert "waiting up to 1s for calls in flight" in stderr
    report = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert report["interrupted"] is True
    measured = report["measured_s"]
    assert 0 < measured < 60
    assert report["scenario"]["duration_s"] == 60
    requests = report["requests"]
    # Every call that reached the server was waited for and answered OK.
    assert received > 0
    assert requests["sent"] == requests["ok"] == received
    assert requests["failed"] == 0
    assert requests["not_sent"] == 0
    # Scheduled counts only calls due before the stop: 50/s over the measured time,
    # give or take one per worker at each worker's cut.
    assert abs(requests["scheduled"] - RATE * measured) <= 2
    assert report["rates"]["target_per_s"] == round(requests["scheduled"] / measured, 3)
    assert sum(p["target"] for p in report["timeline"]["points"]) == requests["scheduled"]
    assert len(report["timeline"]["points"]) == math.ceil(measured)
    # Thresholds are evaluated and printed; the exit code stays 130 all the same.
    assert report["thresholds"]["passed"] is False
    assert report["thresholds"]["results"][0]["name"] == "max_p99_ms"
    assert "max_p99_ms" in stdout
    assert "Interrupted by Ctrl-C after" in stdout
    assert "Interrupted by Ctrl-C after" in (tmp_path / "report.html").read_text()


def test_second_ctrl_c_quits_at_once_without_a_report(
    stuck_server: CountingServer, tmp_path: pathlib.Path
) -> None:
    proc = _start_load(stuck_server.address, tmp_path, "--deadline", "20s")
    time.sleep(5)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "waiting up to 20s for calls in flight" in first
    os.killpg(proc.pid, signal.SIGINT)
    began = time.monotonic()
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - began < 5  # not the 8 s the calls in flight still need
    assert "interrupted again; workers stopped, no report written" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "report.json").exists()
    assert not (tmp_path / "report.html").exists()
