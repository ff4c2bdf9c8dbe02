"""Ctrl-C during a run: the report of what was measured, then exit 130.

The tests send Ctrl-C once they have seen calls reach the server (not after a
fixed sleep: spawned workers importing gRPC can take many seconds to start on
a loaded machine), and hold the report to what the server saw rather than to
wall-clock guesses. Timing bounds are far from what a loaded machine needs
and far from what the bug each one looks for would take.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import jsonschema
import pytest

from hello_loadtest.runner import READY_TIMEOUT_S, STOP_GRACE_S

from .conftest import REPO

SCHEMA = json.loads((REPO / "loadtest" / "report.schema.json").read_text())
RATE = 50
WORKERS = 2
NAME_PREFIX = "interrupt"
# How long to wait for a process to get somewhere (print its port, send calls,
# answer a Ctrl-C). Longer than the runner gives its workers to start, so a
# slow start fails in the runner, with its own message, rather than here.
PATIENCE_S = READY_TIMEOUT_S + 30
POLL_S = 0.02
# started_at is cut to whole milliseconds and measured_s rounded to them.
REPORT_ROUNDING_S = 0.002

T = TypeVar("T")


def _lines(path: pathlib.Path) -> list[str]:
    """The complete lines written to ``path`` so far (not one still being written)."""
    text = path.read_text(errors="replace")
    return text[: text.rfind("\n") + 1].splitlines()


def _wait_for(
    what: str,
    found: Callable[[], T | None],
    *,
    watch: Sequence[subprocess.Popen[bytes]],
    outputs: Sequence[pathlib.Path],
) -> T:
    """``found()`` once it is not None; fails if a watched process exits first."""
    deadline = time.monotonic() + PATIENCE_S
    while (result := found()) is None:
        exited = [p for p in watch if p.poll() is not None]
        if exited or time.monotonic() > deadline:
            why = f"{exited[0].args!r} exited ({exited[0].returncode})" if exited else "timed out"
            tails = "\n".join(f"--- {p.name}:\n" + "\n".join(_lines(p)[-20:]) for p in outputs)
            pytest.fail(f"waiting for {what}: {why}\n{tails}")
        time.sleep(POLL_S)
    return result


@dataclass
class Load:
    """A ``hello-load`` run in its own process group, its output in files."""

    process: subprocess.Popen[bytes]
    stdout: pathlib.Path
    stderr: pathlib.Path

    def ctrl_c(self) -> None:
        """SIGINT to the whole process group, as a terminal's Ctrl-C sends it."""
        os.killpg(self.process.pid, signal.SIGINT)

    def wait_for_stderr(self, text: str) -> None:
        _wait_for(
            f"{text!r} on stderr",
            lambda: next((line for line in _lines(self.stderr) if text in line), None),
            watch=[self.process],
            outputs=[self.stderr],
        )

    def finish(self) -> tuple[int, str, str]:
        """Exit code, stdout and stderr once the run has exited."""
        returncode = self.process.wait(timeout=PATIENCE_S)
        return returncode, self.stdout.read_text(), self.stderr.read_text()


@dataclass
class CountingServer:
    process: subprocess.Popen[bytes]
    output: pathlib.Path
    address: str = ""

    def calls(self) -> list[str]:
        """The names of the calls that have reached the server so far."""
        return [line.removeprefix("call ") for line in _lines(self.output) if line[:5] == "call "]

    def wait_for_calls(self, count: int, load: Load) -> None:
        _wait_for(
            f"{count} calls to reach the server",
            lambda: True if len(self.calls()) >= count else None,
            watch=[self.process, load.process],
            outputs=[self.output, load.stderr],
        )

    def received(self) -> list[str]:
        """Stop the server and return the names of the calls that reached it."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)
        lines = _lines(self.output)
        assert lines, "the counting server printed nothing"
        assert lines[-1].startswith("received="), lines[-5:]
        names = self.calls()
        assert int(lines[-1].removeprefix("received=")) == len(names)
        return names


def _counting_server(delay_s: float, output: pathlib.Path) -> Iterator[CountingServer]:
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.loadtest.counting_server", "--delay",
             str(delay_s)],
            cwd=REPO, stdout=out, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    server = CountingServer(proc, output)
    try:
        port = _wait_for(
            "the counting server's port",
            lambda: next(iter(_lines(output)), None),
            watch=[proc],
            outputs=[output],
        )
        assert port.isdigit(), f"server did not print its port: {port!r}"
        server.address = f"127.0.0.1:{port}"
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


# The slow server's delay. The first test's calls get a deadline well above it,
# so that a loaded machine does not turn a reply into DEADLINE_EXCEEDED.
SLOW_DELAY_S = 0.2
SLOW_DEADLINE_S = 3
# The stuck server's delay: far longer than quitting takes, even on a loaded machine.
STUCK_DELAY_S = 30.0


@pytest.fixture
def slow_server(tmp_path: pathlib.Path) -> Iterator[CountingServer]:
    """Answers after 0.2 s, so about ten calls are in flight at 50 calls/s."""
    yield from _counting_server(SLOW_DELAY_S, tmp_path / "slow-server.out")


@pytest.fixture
def stuck_server(tmp_path: pathlib.Path) -> Iterator[CountingServer]:
    """Answers after 30 s: calls are still in flight long after a Ctrl-C."""
    yield from _counting_server(STUCK_DELAY_S, tmp_path / "stuck-server.out")


@pytest.fixture
def start_load(tmp_path: pathlib.Path) -> Iterator[Callable[..., Load]]:
    """Start ``hello-load constant`` at RATE for 60 s against a target."""
    started: list[Load] = []

    def start(target: str, *extra: str) -> Load:
        stdout, stderr = tmp_path / "load.stdout", tmp_path / "load.stderr"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hello_loadtest", "constant", "-r", str(RATE), "-d", "60s",
                 "-p", str(WORKERS), "-t", target, "--no-progress",
                 "--arrivals", "uniform", "--names", "sequence", "--name-prefix", NAME_PREFIX,
                 "--json-report", str(tmp_path / "report.json"),
                 "--html-report", str(tmp_path / "report.html"), *extra],
                cwd=REPO, stdout=out, stderr=err,
                # Its own process group, signalled as a terminal's Ctrl-C signals one.
                start_new_session=True,
            )  # fmt: skip
        started.append(Load(proc, stdout, stderr))
        return started[-1]

    yield start
    for load in started:
        # A run that a failed test left behind stops now, workers and all,
        # rather than at the end of its schedule.
        if load.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(load.process.pid, signal.SIGKILL)
            load.process.wait(10)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _due_s(index: int) -> float:
    """When call ``index`` is due, from the start: uniform arrivals at (k + 0.5) / rate."""
    return (index + 0.5) / RATE


# About two seconds of the schedule before the first test's Ctrl-C: calls are
# in flight, and the timeline has whole seconds before the cut.
CALLS_BEFORE_FIRST_CTRL_C = 2 * RATE


def test_first_ctrl_c_waits_for_calls_in_flight_and_writes_an_interrupted_report(
    slow_server: CountingServer, start_load: Callable[..., Load], tmp_path: pathlib.Path
) -> None:
    load = start_load(
        slow_server.address, "--deadline", f"{SLOW_DEADLINE_S}s", "--max-p99-ms", "0.001"
    )
    slow_server.wait_for_calls(CALLS_BEFORE_FIRST_CTRL_C, load)
    ctrl_c_at = time.time()
    began = time.monotonic()
    load.ctrl_c()
    returncode, stdout, stderr = load.finish()
    waited = time.monotonic() - began
    names = slow_server.received()

    assert returncode == 130, stderr
    # Waiting for the calls in flight is held to the report's own timestamps
    # below. This bound adds what the user sees (writing the reports, rendering
    # the HTML page takes seconds on a loaded machine): well short of the ~58 s
    # left of the schedule that a Ctrl-C not stopping it would take.
    assert waited < 30
    assert "Traceback" not in stderr
    assert f"waiting up to {SLOW_DEADLINE_S}s for calls in flight" in stderr
    report = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert report["interrupted"] is True
    measured = report["measured_s"]
    assert 0 < measured < 60
    assert report["scenario"]["duration_s"] == 60
    assert report["scenario"]["warmup_s"] == 0
    requests = report["requests"]
    # Every call that reached the server was waited for and answered OK.
    assert len(names) >= CALLS_BEFORE_FIRST_CTRL_C
    assert requests["sent"] == requests["ok"] == len(names)
    assert requests["failed"] == 0
    # A worker whose loop was busy when the stop came has calls that came due
    # just before its cut and never started: not_sent. On a loaded machine a
    # few; a stop that counted the rest of the schedule would give ~2,900.
    not_sent = requests["not_sent"]
    assert 0 <= not_sent <= RATE // 2

    # The calls that came: each worker sent its share of the schedule (every
    # WORKERS-th call) in order up to its own cut, skipping and repeating none.
    indexes = sorted(int(name.removeprefix(f"{NAME_PREFIX}-")) for name in names)
    assert len(set(indexes)) == len(indexes), "a call was sent twice"
    last_sent = {}
    for worker in range(WORKERS):
        mine = [i for i in indexes if i % WORKERS == worker]
        assert mine, f"worker {worker} sent nothing"
        assert mine == list(range(worker, mine[-1] + 1, WORKERS)), f"worker {worker} skipped"
        last_sent[worker] = mine[-1]
    # Scheduled counts exactly the calls due before the stop, before each
    # worker's own cut: those sent and those not_sent, not the rest of the
    # 60 s schedule.
    assert requests["scheduled"] == len(indexes) + not_sent
    # measured_s is the latest cut. The workers see the stop at different
    # moments (tens of ms apart, more on a loaded machine: 80 ms is already two
    # calls), so scheduled is not 50/s times measured_s to within a call or
    # two. Each cut is pinned instead by its worker's own calls: after its last
    # call came due, no later than its next one that was not counted (not due).
    # With nothing not_sent, a window of WORKERS / RATE = 40 ms, whatever the
    # skew; each call not_sent came due before a cut and widens it by one.
    cut_after = max(_due_s(last) for last in last_sent.values())
    cut_by = max(_due_s(last + WORKERS * (1 + not_sent)) for last in last_sent.values())
    assert cut_after - REPORT_ROUNDING_S <= measured <= cut_by + REPORT_ROUNDING_S, last_sent
    # So no more than 50/s over measured_s was scheduled, give or take one per
    # worker at its cut (fewer when a worker stopped before the last one).
    assert requests["scheduled"] <= RATE * measured + WORKERS
    assert report["rates"]["target_per_s"] == round(requests["scheduled"] / measured, 3)
    points = report["timeline"]["points"]
    interval = report["timeline"]["interval_s"]
    assert sum(p["target"] for p in points) == requests["scheduled"]
    assert len(points) == math.ceil(measured / interval)
    # Every whole interval before the earlier cut had all its calls due.
    whole = int(min(_due_s(last) for last in last_sent.values()) // interval)
    assert whole >= 1
    assert [p["target"] for p in points[:whole]] == [RATE * interval] * whole

    # The cut, on the run's clock, came with the Ctrl-C: not before it, and not
    # seconds after it (the signal, the parent's 0.1 s poll and a pipe message
    # to each worker; a Ctrl-C left for the schedule's end would be ~58 s).
    cut_at = _epoch(report["started_at"]) + measured
    assert ctrl_c_at - REPORT_ROUNDING_S <= cut_at < ctrl_c_at + 10
    # The run ended (exports merged, before any report was rendered) within what
    # the runner allows after a stop: the call deadline for the calls in flight,
    # plus STOP_GRACE_S for the workers to exit. The calls themselves took 0.2 s.
    assert 0 <= _epoch(report["finished_at"]) - cut_at <= SLOW_DEADLINE_S + STOP_GRACE_S

    # Thresholds are evaluated and printed; the exit code stays 130 all the same.
    assert report["thresholds"]["passed"] is False
    assert report["thresholds"]["results"][0]["name"] == "max_p99_ms"
    assert "max_p99_ms" in stdout
    assert "Interrupted by Ctrl-C after" in stdout
    assert "Interrupted by Ctrl-C after" in (tmp_path / "report.html").read_text()


def test_second_ctrl_c_quits_at_once_without_a_report(
    stuck_server: CountingServer, start_load: Callable[..., Load], tmp_path: pathlib.Path
) -> None:
    load = start_load(stuck_server.address, "--deadline", "60s")
    stuck_server.wait_for_calls(RATE // 5, load)  # calls in flight, held for 30 s each
    load.ctrl_c()
    load.wait_for_stderr("waiting up to 60s for calls in flight")
    load.ctrl_c()
    began = time.monotonic()
    returncode, _, stderr = load.finish()
    assert returncode == 130, stderr
    # Not the ~30 s the calls in flight still need: the last of them reached the
    # server just before the first Ctrl-C, and each is answered 30 s after it came.
    assert time.monotonic() - began < 15
    assert "interrupted again; workers stopped, no report written" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "report.json").exists()
    assert not (tmp_path / "report.html").exists()
