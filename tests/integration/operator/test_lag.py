"""Reading offsets from a real broker: what the scale loop feeds to decide()."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from hello_core.kafka import admin_config
from hello_core.settings import KafkaSettings
from hello_dev.kafka import KafkaCluster
from hello_dev.ports import free_port
from hello_operator.handlers import offsets_consumer_config
from hello_operator.lag import KafkaUnreachableError, OffsetReader, TopicNotFoundError
from hello_operator.scaling import PartitionOffsets
from tests.integration.operator.conftest import commit_offsets

pytestmark = pytest.mark.slow


def reader(bootstrap: str, *, timeout: float = 5.0) -> OffsetReader:
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    return OffsetReader(
        AdminClient(admin_config(settings)),
        consumer_for=lambda group: Consumer(offsets_consumer_config(settings, group_id=group)),
        timeout=timeout,
    )


def test_reads_committed_and_watermarks_per_partition(kafka: KafkaCluster) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    kafka.create_topics({topic: 3})
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for partition, count in {0: 7, 1: 3}.items():
        for _ in range(count):
            producer.produce(topic, b"x", partition=partition)
    assert producer.flush(30) == 0
    commit_offsets(kafka.bootstrap_servers, group, topic, {0: 5})

    offsets_reader = reader(kafka.bootstrap_servers)
    try:
        found = offsets_reader.read(topic, group)
    finally:
        offsets_reader.close()
    assert found == [
        PartitionOffsets(0, committed=5, log_start=0, log_end=7),
        PartitionOffsets(1, committed=-1001, log_start=0, log_end=3),
        PartitionOffsets(2, committed=-1001, log_start=0, log_end=0),
    ]


def test_a_missing_topic_is_reported_as_such(kafka: KafkaCluster) -> None:
    offsets_reader = reader(kafka.bootstrap_servers)
    try:
        with pytest.raises(TopicNotFoundError, match="does not exist"):
            offsets_reader.read(f"absent-{uuid.uuid4().hex[:8]}", "g")
    finally:
        offsets_reader.close()


def test_no_broker_is_reported_as_unreachable() -> None:
    offsets_reader = reader(f"127.0.0.1:{free_port()}", timeout=1.0)
    try:
        with pytest.raises(KafkaUnreachableError, match="Kafka did not answer"):
            offsets_reader.read("t", "g")
    finally:
        offsets_reader.close()
