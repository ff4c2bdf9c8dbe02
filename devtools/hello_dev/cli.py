"""``hello-dev``: start real Kafka, the Kubernetes API server, or the whole pipeline locally."""

from __future__ import annotations

import logging
import pathlib
import signal
import tempfile
import threading

import click

from hello_core import logs
from hello_dev import kafka as kafka_tools
from hello_dev.kafka import KafkaToolingError
from hello_dev.pipeline import (
    DEAD_LETTER_TOPIC,
    INPUT_TOPIC,
    OUTPUT_TOPIC,
    LocalPipeline,
    ServiceStartError,
)
from hello_dev.ports import free_port

logger = logging.getLogger(__name__)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
def cli(log_level: str) -> None:
    """Development tooling for hello-platform."""
    logs.configure(log_level.upper(), "text")


@cli.group()
def kafka() -> None:
    """A real Apache Kafka (KRaft) on 127.0.0.1."""


@kafka.command("fetch")
@click.option("--version", default=kafka_tools.KAFKA_VERSION, show_default=True)
def kafka_fetch(version: str) -> None:
    """Resolve Kafka's jars from Maven Central into the cache."""
    click.echo(kafka_tools.ensure_jars(version))


@kafka.command("start")
@click.option("--brokers", default=1, show_default=True, type=click.IntRange(1, 5))
@click.option("--port", default=None, type=int, help="Client port (single broker only).")
@click.option("--version", default=kafka_tools.KAFKA_VERSION, show_default=True)
def kafka_start(brokers: int, port: int | None, version: str) -> None:
    """Start a cluster and keep it running until Ctrl-C."""
    cluster = kafka_tools.KafkaCluster(brokers=brokers, port=port, version=version)
    try:
        cluster.start()
    except KafkaToolingError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        click.echo(kafka_tools.describe(cluster))
        click.echo("Ctrl-C stops it and deletes its data.")
        _wait_for_signal()
    finally:
        cluster.stop()


@cli.command()
@click.option("--api-port", default=50051, show_default=True, help="gRPC port of the API.")
@click.option("--kafka-port", default=9092, show_default=True)
@click.option("--consumers", default=1, show_default=True, type=click.IntRange(1, 16))
@click.option("--partitions", default=6, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=None,
    help="Where logs and Kafka data go (default: a new temporary folder).",
)
def up(
    api_port: int, kafka_port: int, consumers: int, partitions: int, workdir: pathlib.Path | None
) -> None:
    """Start Kafka, create the topics, start the API and the consumer(s)."""
    workdir = workdir or pathlib.Path(tempfile.mkdtemp(prefix="hello-platform-"))
    pipeline = LocalPipeline(
        workdir=workdir,
        consumers=consumers,
        partitions=partitions,
        api_port=api_port,
        kafka_port=kafka_port,
        api_http_port=free_port(),
    )
    try:
        pipeline.start()
    except (KafkaToolingError, ServiceStartError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        assert pipeline.kafka is not None
        ports = ", ".join(map(str, pipeline.consumer_http_ports))
        click.echo(
            f"""
hello-platform is running.

  gRPC API:   {pipeline.api_target}   (/hello.HelloApi/SayHello)
  API probes: http://127.0.0.1:{pipeline.api_http_port}/metrics, /livez, /readyz
  Kafka:      {pipeline.kafka.bootstrap_servers}
  topics:     {INPUT_TOPIC} -> {OUTPUT_TOPIC}, dead letters to {DEAD_LETTER_TOPIC}
  consumers:  {consumers}, probes and metrics on ports {ports}
  logs:       {workdir}

Try it:   .venv/bin/hello --target {pipeline.api_target} say Alice
Ctrl-C stops everything and deletes the broker's data (logs stay).
"""
        )
        dead = _watch(pipeline)
    finally:
        click.echo("stopping...")
        pipeline.stop()
    if dead is not None:
        raise click.ClickException(dead)


def _watch(pipeline: LocalPipeline) -> str | None:
    """Wait for Ctrl-C/SIGTERM; return why, if a process of the pipeline died first."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        dead = pipeline.dead_process()
        if dead is not None:
            return dead
    return None


try:
    from hello_dev import kube as _kube

    _kube.register(cli)
except ImportError:  # pragma: no cover - the Kubernetes tooling is optional
    pass


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
