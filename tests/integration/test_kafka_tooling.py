"""The project's own Kafka tooling: a real KRaft broker, one node or three."""

from __future__ import annotations

import os
import pathlib
import signal
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from hello_dev.kafka import KAFKA_VERSION, KafkaCluster, ensure_jars, random_cluster_id


def test_jars_are_cached_for_the_pinned_version() -> None:
    libdir = ensure_jars()
    assert (libdir / f"kafka_2.13-{KAFKA_VERSION}.jar").exists()
    assert (libdir / ".complete").read_text().strip() == KAFKA_VERSION
    assert ensure_jars() == libdir  # second call is a cache hit


def test_cluster_ids_are_22_url_safe_characters_not_starting_with_dash() -> None:
    ids = [random_cluster_id() for _ in range(200)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert all(
        set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for i in ids
    )


def test_single_broker_serves_clients_on_loopback(kafka: KafkaCluster) -> None:
    host, _, port = kafka.bootstrap_servers.partition(":")
    assert host == "127.0.0.1" and int(port) > 0
    kafka.create_topics({"tooling-single": 3})
    kafka.create_topics({"tooling-single": 3})  # existing topics are left alone
    metadata = AdminClient({"bootstrap.servers": kafka.bootstrap_servers}).list_topics(timeout=10)
    assert len(metadata.topics["tooling-single"].partitions) == 3
    assert list(metadata.brokers) == [1]


def produce_one(bootstrap: str, topic: str, value: bytes) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 30000,
        }
    )
    errors: list[object] = []
    producer.produce(topic, value, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors == [None]


@pytest.mark.slow
def test_three_broker_cluster_keeps_accepting_writes_with_one_broker_down(
    tmp_path: pathlib.Path,
) -> None:
    with KafkaCluster(brokers=3, workdir=tmp_path / "kafka3", heap="384m") as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        assert sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3]
        cluster.create_topics({"replicated": 3})
        topic = admin.list_topics(timeout=10).topics["replicated"]
        assert all(len(p.replicas) == 3 for p in topic.partitions.values())

        cluster.stop_node(2)
        # min.insync.replicas=2 of replication factor 3: one broker down is fine.
        produce_one(cluster.bootstrap_servers, "replicated", b"with node 2 down")

        cluster.start_node(2)
        assert sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3]
        produce_one(cluster.bootstrap_servers, "replicated", b"with node 2 back")

        # A frozen broker still stops on SIGTERM, without waiting out the timeout to be killed.
        node = cluster.nodes[2].process
        assert node is not None
        os.kill(node.pid, signal.SIGSTOP)
        started = time.monotonic()
        cluster.stop_node(3, timeout=25)
        assert time.monotonic() - started < 25
        assert node.returncode is not None
