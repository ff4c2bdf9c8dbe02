"""Benchmark of hello-operator against a real kube-apiserver and Kafka broker.

    .venv/bin/python operator/bench/bench.py [--pipelines 100] [--polling-interval 2]

Prints two figures (a command, not a test; nothing is asserted):

1. Scale-up latency: from a backlog being acknowledged by Kafka to the
   consumer Deployment's spec.replicas being patched, for one pipeline.
   The goal is at most pollingInterval + 2 s; a backlog that lands right
   after a poll waits nearly a whole interval, so expect values spread
   between ~0 and the interval.
2. Operator CPU (user + system, from /proc) per reconcile and per poll with
   N pipelines: reconciles are the create handlers applying owned objects;
   polls are scale-loop iterations (read offsets, decide, patch status).

Everything runs on 127.0.0.1 and is stopped at the end. Lives outside the
package because it uses the dev tooling (hello_dev), which production
images do not carry.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import yaml
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kubernetes import client, dynamic
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from hello_dev.kafka import KafkaCluster
from hello_dev.kube import KubeApiServer
from hello_dev.ports import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "hello-platform.dev", "v1alpha1", "hellopipelines"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def wait_for(check: Callable[[], Any], *, timeout: float, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (client.ApiException, OSError, ResourceNotFoundError):
            pass  # not there yet (a new CRD is missing from discovery for a moment)
        time.sleep(interval)
    raise TimeoutError(f"not true within {timeout}s: {check}")


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def install_crds(api: client.ApiClient) -> None:
    dyn = dynamic.DynamicClient(api)
    crd = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    for path in sorted((ROOT / "charts/hello-platform/crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            dyn.server_side_apply(
                crd, body=doc, name=doc["metadata"]["name"], field_manager="bench"
            )
    wait_for(
        lambda: dynamic.DynamicClient(api).resources.get(
            api_version=f"{GROUP}/{VERSION}", kind="HelloPipeline"
        ),
        timeout=30,
        interval=0.2,
    )


def pipeline(name: str, topic: str, group: str, interval: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HelloPipeline",
        "metadata": {"name": name},
        "spec": {
            "topic": topic,
            "consumerGroup": group,
            "offsetResetPolicy": "earliest",
            "lagThreshold": 10,
            "maxReplicas": 4,
            "pollingInterval": interval,
            "scaleDownStabilizationSeconds": 1,
            "consumer": {"image": "registry.invalid/hello-platform:bench"},
        },
    }


def replicas(apps: client.AppsV1Api, namespace: str, name: str) -> int:
    found = apps.read_namespaced_deployment(f"{name}-consumer", namespace)
    return int(found.spec.replicas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", type=int, default=100)
    parser.add_argument("--polling-interval", type=int, default=2)
    parser.add_argument("--latency-runs", type=int, default=8)
    parser.add_argument("--cpu-window", type=float, default=30.0, help="seconds")
    args = parser.parse_args()

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="hello-bench-"))
    with KafkaCluster() as kafka, KubeApiServer(workdir_parent=workdir) as kube:
        api = kube.api_client()
        install_crds(api)
        namespace = f"bench-{uuid.uuid4().hex[:6]}"
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        custom = client.CustomObjectsApi(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))

        metrics_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_")}
        env.update(
            {
                "KUBECONFIG": str(kube.kubeconfig_path),
                "HELLO_OPERATOR_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                "HELLO_OPERATOR_NAMESPACES": json.dumps([namespace]),
                "HELLO_OPERATOR_STANDALONE": "true",
                "HELLO_OPERATOR_METRICS_PORT": str(metrics_port),
                "HELLO_OPERATOR_HEALTH_PORT": "0",
                "HELLO_OPERATOR_LOG__LEVEL": "WARNING",
            }
        )
        log = (workdir / "operator.log").open("wb")
        operator = subprocess.Popen(
            [sys.executable, "-m", "hello_operator"], env=env, stdout=log, stderr=log
        )
        try:
            wait_for(lambda: metric(metrics_port, "python_info"), timeout=30, interval=0.2)
            latency(args, kafka, custom, apps, namespace)
            cpu(args, kafka, custom, namespace, operator.pid, metrics_port)
        finally:
            operator.terminate()
            operator.wait(timeout=30)
            log.close()
            api.close()
    print(f"operator log: {workdir / 'operator.log'}")


def latency(
    args: argparse.Namespace,
    kafka: KafkaCluster,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    namespace: str,
) -> None:
    topic, group, name = "latency", "latency-group", "latency"
    kafka.create_topics({topic: 4})
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, pipeline(name, topic, group, args.polling_interval)
    )
    status = lambda: custom.get_namespaced_custom_object(  # noqa: E731
        GROUP, VERSION, namespace, PLURAL, name
    ).get("status", {})
    wait_for(lambda: status().get("lastPollTime") and status().get("totalLag") == 0, timeout=60)
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 0})
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    samples, end = [], 0
    for _ in range(args.latency_runs):
        for partition in range(4):
            for _ in range(10):
                producer.produce(topic, b"x", partition=partition)
        producer.flush(30)
        end += 10
        backlog_at = time.monotonic()
        wait_for(lambda: replicas(apps, namespace, name) > 0, timeout=args.polling_interval + 30)
        samples.append(time.monotonic() - backlog_at)
        # Drain: the group commits everything, the operator scales back to 0.
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, p, end) for p in range(4)]
        )
        for future in admin.alter_consumer_group_offsets([request]).values():
            future.result(timeout=30)
        wait_for(lambda: replicas(apps, namespace, name) == 0, timeout=60)
        time.sleep(args.polling_interval * 0.37)  # land backlogs at varied poll phases
    print(
        f"scale-up latency over {len(samples)} backlogs, pollingInterval={args.polling_interval}s:"
        f" min {min(samples):.2f}s, median {statistics.median(samples):.2f}s,"
        f" max {max(samples):.2f}s (goal ≤ {args.polling_interval + 2}s)"
    )


def cpu(
    args: argparse.Namespace,
    kafka: KafkaCluster,
    custom: client.CustomObjectsApi,
    namespace: str,
    pid: int,
    metrics_port: int,
) -> None:
    count = args.pipelines
    kafka.create_topics({f"bench-{i}": 2 for i in range(count)})
    reconciles_before = metric(metrics_port, 'hello_operator_reconciles_total{outcome="applied"}')
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    for i in range(count):
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            pipeline(f"bench-{i}", f"bench-{i}", f"bench-group-{i}", args.polling_interval),
        )
    wait_for(
        lambda: (
            metric(metrics_port, 'hello_operator_reconciles_total{outcome="applied"}')
            - reconciles_before
            >= count
        ),
        timeout=300,
        interval=0.2,
    )
    reconcile_wall = time.monotonic() - started
    reconcile_cpu = cpu_seconds(pid) - cpu_before
    print(
        f"{count} pipelines created and reconciled in {reconcile_wall:.1f}s;"
        f" operator CPU {reconcile_cpu:.2f}s ({reconcile_cpu / count * 1000:.1f} ms per"
        " reconcile, including the scale-loop polls that ran meanwhile)"
    )

    time.sleep(args.polling_interval * 2)  # every loop has started
    polls_before = metric(metrics_port, "hello_operator_poll_seconds_count")
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    time.sleep(args.cpu_window)
    polls = metric(metrics_port, "hello_operator_poll_seconds_count") - polls_before
    used = cpu_seconds(pid) - cpu_before
    wall = time.monotonic() - wall_before
    print(
        f"steady state with {count} pipelines at pollingInterval={args.polling_interval}s:"
        f" {polls / wall:.1f} polls/s, operator CPU {used / wall * 100:.0f}% of one core,"
        f" {used / max(polls, 1) * 1000:.1f} ms CPU per poll"
    )


if __name__ == "__main__":
    main()
