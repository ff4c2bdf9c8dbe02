"""Servers for the load-test client's integration tests, all on 127.0.0.1."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REPO = pathlib.Path(__file__).parents[3]


@dataclass
class Served:
    address: str
    process: subprocess.Popen[str]


def _serve(args: list[str]) -> Iterator[Served]:
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"server did not print its port (exit code {proc.poll()})"
        yield Served(f"127.0.0.1:{port}", proc)
    finally:
        assert proc.stdout is not None
        proc.stdout.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[Served]:
    """The bare HelloApi echo server in its own process."""
    yield from _serve(["-m", "hello_loadtest.echo", "--port", "0"])


@dataclass
class LoadRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None


@pytest.fixture
def hello_load(tmp_path: pathlib.Path):
    """Run the CLI as a user would; returns its exit code and the parsed JSON report."""

    def run(*args: str, timeout: float = 120) -> LoadRun:
        report_path = tmp_path / "report.json"
        report_path.unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "hello_loadtest", *args, "--json-report", str(report_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        return LoadRun(proc.returncode, proc.stdout, proc.stderr, report)

    return run


@dataclass
class Pipeline:
    api_target: str
    bootstrap_servers: str
    output_topic: str


@pytest.fixture(scope="module")
def pipeline(kafka, tmp_path_factory) -> Iterator[Pipeline]:
    """The real API and one consumer as processes, on topics of their own.

    Topics and the consumer group get a per-module suffix so that other tests
    sharing the session broker (and their consumers) never see this traffic.
    """
    from hello_dev.pipeline import (
        api_process,
        consumer_process,
        wait_api_ready,
        wait_http_ready,
    )
    from hello_dev.ports import free_port

    suffix = uuid.uuid4().hex[:8]
    requests, greetings, dead = f"lt-req-{suffix}", f"lt-greet-{suffix}", f"lt-dlt-{suffix}"
    kafka.create_topics({requests: 3, greetings: 3, dead: 1})
    logs = tmp_path_factory.mktemp("pipeline")
    consumer_port, api_port = free_port(), free_port()
    consumer = consumer_process(
        bootstrap_servers=kafka.bootstrap_servers,
        http_port=consumer_port,
        log_dir=logs,
        extra_env={
            "HELLO_CONSUMER_INPUT_TOPIC": requests,
            "HELLO_CONSUMER_OUTPUT_TOPIC": greetings,
            "HELLO_CONSUMER_DEAD_LETTER_TOPIC": dead,
            "HELLO_CONSUMER_GROUP_ID": f"lt-consumer-{suffix}",
            "HELLO_CONSUMER_TRANSACTIONAL_ID": f"lt-consumer-{suffix}",
        },
    )
    api = api_process(
        bootstrap_servers=kafka.bootstrap_servers,
        port=api_port,
        log_dir=logs,
        extra_env={"HELLO_API_TOPIC": requests},
    )
    try:
        consumer.start()
        api.start()
        wait_api_ready(api, api_port)
        wait_http_ready(consumer, consumer_port)
        yield Pipeline(f"127.0.0.1:{api_port}", kafka.bootstrap_servers, greetings)
    finally:
        api.stop()
        consumer.stop()


@pytest.fixture(scope="module")
def fake_pipeline_factory(kafka):
    """Start fake pipelines (see fake_pipeline.py) writing to a fresh topic each."""
    started: list[Iterator[Served]] = []

    def start(*extra: str) -> tuple[Served, str]:
        topic = f"lt-fake-{uuid.uuid4().hex[:8]}"
        kafka.create_topics({topic: 2})
        gen = _serve(
            [
                "-m", "tests.integration.loadtest.fake_pipeline",
                "--bootstrap-servers", kafka.bootstrap_servers, "--topic", topic, *extra,
            ]
        )  # fmt: skip
        started.append(gen)
        return next(gen), topic

    yield start
    for gen in started:
        gen.close()
