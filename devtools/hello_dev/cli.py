"""``hello-dev``: start real Kafka, the Kubernetes API server, or the whole pipeline locally."""

from __future__ import annotations

import logging
import pathlib
import signal
import tempfile
import threading
from typing import get_args

import click

from hello_core import logs
from hello_core.settings import LogLevel
from hello_dev import kafka as kafka_tools
from hello_dev.kafka import KafkaToolingError
from hello_dev.pipeline import (
    DEAD_LETTER_TOPIC,
    DEFAULT_PARTITIONS,
    INPUT_TOPIC,
    OUTPUT_TOPIC,
    LocalPipeline,
    ServiceStartError,
    pipeline_topics,
)
from hello_dev.ports import free_port

logger = logging.getLogger(__name__)

# A TCP port; 0 is allowed and means "pick a free one" (the code asks free_port()).
PORT = click.IntRange(0, 65535)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@click.group()
@click.option(
    "--log-level",
    type=click.Choice(get_args(LogLevel), case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Any letter case.",
)
def cli(log_level: str) -> None:
    """Development tooling for hello-platform."""
    # click.Choice hands back the choice as spelled above, i.e. upper case.
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
@click.option(
    "--port",
    default=9092,
    show_default=True,
    type=PORT,
    help="Client port, single broker only (several brokers always get free ports); "
    "0 picks a free port. The services' default is 127.0.0.1:9092.",
)
@click.option(
    "--topics",
    is_flag=True,
    help=f"Also create the pipeline's topics, as `hello-dev up` does: {INPUT_TOPIC}, "
    f"{OUTPUT_TOPIC} (--partitions each) and {DEAD_LETTER_TOPIC} (1).",
)
@click.option(
    "--partitions",
    default=DEFAULT_PARTITIONS,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Partitions of the input and output topics, with --topics.",
)
@click.option("--version", default=kafka_tools.KAFKA_VERSION, show_default=True)
def kafka_start(brokers: int, port: int, topics: bool, partitions: int, version: str) -> None:
    """Start a cluster and keep it running until Ctrl-C."""
    cluster = kafka_tools.KafkaCluster(brokers=brokers, port=port or None, version=version)
    try:
        cluster.start()
    except KafkaToolingError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        if topics:
            try:
                cluster.create_topics(pipeline_topics(partitions))
            except KafkaToolingError as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(kafka_tools.describe(cluster))
        if topics:
            click.echo(
                f"topics: {INPUT_TOPIC} -> {OUTPUT_TOPIC}, dead letters to {DEAD_LETTER_TOPIC}"
            )
        click.echo("Ctrl-C stops it and deletes its data.")
        _wait_for_signal()
    finally:
        cluster.stop()


@cli.command()
@click.option(
    "--api-port",
    default=50051,
    show_default=True,
    type=PORT,
    help="gRPC port of the API; 0 picks a free port.",
)
@click.option(
    "--kafka-port",
    default=9092,
    show_default=True,
    type=PORT,
    help="Client port of the broker; 0 picks a free port.",
)
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
    if api_port and api_port == kafka_port:
        raise click.BadParameter(
            f"--api-port and --kafka-port are both {api_port}; they must differ."
        )
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
