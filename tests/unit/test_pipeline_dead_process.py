"""``hello-dev up`` names a process that died, with its last log lines."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from hello_dev.kafka import KafkaCluster, KafkaNode
from hello_dev.pipeline import LocalPipeline


def test_a_dead_kafka_node_is_reported_with_its_last_log_lines(tmp_path: pathlib.Path) -> None:
    home = tmp_path / "node-1"
    (home / "logs").mkdir(parents=True)
    (home / "logs" / "server.log").write_text("INFO starting\nERROR Disk error on /data\n")
    died = subprocess.Popen([sys.executable, "-c", "raise SystemExit(137)"])
    died.wait()
    cluster = KafkaCluster(brokers=1, workdir=tmp_path)
    cluster.nodes = [KafkaNode(node_id=1, port=1, controller_port=2, home=home, process=died)]
    pipeline = LocalPipeline(workdir=tmp_path, kafka=cluster)
    reason = pipeline.dead_process()
    assert reason is not None
    assert reason.startswith("kafka node 1 exited with 137; its last log lines:\n")
    assert "ERROR Disk error on /data" in reason


def test_nothing_is_reported_while_every_process_runs(tmp_path: pathlib.Path) -> None:
    assert LocalPipeline(workdir=tmp_path).dead_process() is None
