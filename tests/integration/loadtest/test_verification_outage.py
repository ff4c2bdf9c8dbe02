"""--verify when Kafka goes away after the pre-run check: an error, not losses.

The echo server answers OK with fresh ids and writes nothing to Kafka, so
every id is missing from the output topic. Against a reachable broker that
is a measurement (all lost, ``verification_error`` null); against a broker
that stopped after the pre-run check it is not: nothing could be read.
The outage test stops a broker of its own, never the session's.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from hello_dev.kafka import KafkaCluster

from .conftest import REPO

pytestmark = pytest.mark.slow

RATE, SECONDS = 20, 3
# Logged at INFO once the pre-run check has read the topic's end offsets.
MARKED = "verification start offsets"


@pytest.fixture
def own_kafka() -> Iterator[KafkaCluster]:
    """A broker for this test alone, so that stopping it disturbs no other test."""
    with KafkaCluster(brokers=1) as cluster:
        yield cluster


def _hello_load(target: str, bootstrap: str, topic: str, report: pathlib.Path, *extra: str):
    return subprocess.Popen(
        [sys.executable, "-m", "hello_loadtest", "constant", "-r", str(RATE),
         "-d", f"{SECONDS}s", "-t", target, "--no-progress", "--log-level", "INFO",
         "--verify", "--bootstrap-servers", bootstrap, "--output-topic", topic,
         "--json-report", str(report), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_broker_lost_after_the_pre_run_check_is_a_verification_error_not_losses(
    echo_server, own_kafka, tmp_path
):
    topic = f"lt-outage-{uuid.uuid4().hex[:8]}"
    own_kafka.create_topics({topic: 2})
    report_path = tmp_path / "report.json"
    proc = _hello_load(
        echo_server.address, own_kafka.bootstrap_servers, topic, report_path,
        "--verify-timeout", "3s", "--max-lost", "0",
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        for line in proc.stderr:
            seen.append(line)
            if MARKED in line:
                break
        else:
            pytest.fail("hello-load never passed the pre-run check:\n" + "".join(seen))
        # The pre-run check passed and the load is running: Kafka goes away.
        own_kafka.stop_node(1, kill=True)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stderr = "".join(seen) + stderr
    assert proc.returncode == 3, stdout + stderr
    report = json.loads(report_path.read_text())
    assert report["requests"]["ok"] == RATE * SECONDS
    assert report["verification"] is None
    error = report["verification_error"]
    prefix = f"lost contact with Kafka at {own_kafka.bootstrap_servers} while reading {topic!r}: "
    assert error.startswith(prefix), error
    assert error.endswith("; lost/duplicate counts are unknown"), error
    reason = error.removeprefix(prefix).removesuffix("; lost/duplicate counts are unknown")
    assert "Connection refused" in reason or "brokers are down" in reason, error
    assert f"hello-load: verification failed: {error}" in stderr
    # Delivery cannot be judged, so the delivery gate fails rather than passing or counting.
    assert report["thresholds"]["results"] == [
        {"name": "max_lost", "limit": 0.0, "actual": None, "passed": False}
    ]


def test_greetings_missing_from_a_reachable_kafka_are_lost_not_an_error(
    echo_server, kafka, tmp_path
):
    topic = f"lt-missing-{uuid.uuid4().hex[:8]}"
    kafka.create_topics({topic: 2})
    report_path = tmp_path / "report.json"
    proc = _hello_load(
        echo_server.address, kafka.bootstrap_servers, topic, report_path,
        "--verify-timeout", "2s",
    )  # fmt: skip
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 0, stdout + stderr
    report = json.loads(report_path.read_text())
    assert report["verification_error"] is None
    verification = report["verification"]
    expected = RATE * SECONDS
    assert (verification["expected"], verification["received"]) == (expected, 0)
    assert (verification["lost"], verification["timed_out"]) == (expected, True)
