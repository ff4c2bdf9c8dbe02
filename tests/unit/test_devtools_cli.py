"""``hello-dev``'s command line refuses bad options before it starts anything."""

from __future__ import annotations

import pathlib
import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from hello_dev import cli, pipeline
from hello_dev.ports import free_port


class NoKafka:
    """Stands in for KafkaCluster: a test fails if anything tries to start a broker."""

    started: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def start(self, **_: Any) -> None:
        NoKafka.started.append(self.kwargs)
        raise AssertionError("Kafka was started")

    def stop(self) -> None:
        pass

    def delete_data(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_kafka(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    NoKafka.started = []
    monkeypatch.setattr(pipeline, "KafkaCluster", NoKafka)
    monkeypatch.setattr(cli.kafka_tools, "KafkaCluster", NoKafka)
    # The group callback configures the root logger; keep pytest's handlers.
    monkeypatch.setattr(cli.logs, "configure", lambda *args: None)
    yield NoKafka.started


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port something listens on, as a running hello-api would."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield squatter.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [
        (["up", "--kafka-port", "70000"], "--kafka-port", "70000"),
        (["up", "--kafka-port", "-1"], "--kafka-port", "-1"),
        (["up", "--api-port", "65536"], "--api-port", "65536"),
        (["up", "--api-port", "-1"], "--api-port", "-1"),
        (["kafka", "start", "--port", "70000"], "--port", "70000"),
        (["kafka", "start", "--port", "-1"], "--port", "-1"),
    ],
)
def test_a_port_out_of_range_is_a_usage_error(
    args: list[str],
    option: str,
    value: str,
    tmp_path: pathlib.Path,
    no_kafka: list[dict[str, Any]],
) -> None:
    workdir = [f"--workdir={tmp_path}"] if args[0] == "up" else []
    result = CliRunner().invoke(cli.cli, [*args, *workdir])
    assert result.exit_code == 2, result.output
    assert result.output.endswith(
        f"Error: Invalid value for '{option}': {value} is not in the range 0<=x<=65535.\n"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert no_kafka == []


def test_port_help_says_that_0_picks_a_free_port() -> None:
    for args in (["up", "--help"], ["kafka", "start", "--help"]):
        result = CliRunner().invoke(cli.cli, args, terminal_width=200)
        assert result.exit_code == 0
        assert "0 picks a free port" in result.output
        assert "0<=x<=65535" in result.output


def test_up_refuses_an_api_port_that_is_taken_before_starting_kafka(
    listening: int, tmp_path: pathlib.Path, no_kafka: list[dict[str, Any]]
) -> None:
    result = CliRunner().invoke(
        cli.cli,
        ["up", f"--api-port={listening}", f"--kafka-port={free_port()}", f"--workdir={tmp_path}"],
    )
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: port 127.0.0.1:{listening} is already in use (the API's gRPC port); "
        "stop whatever listens there or pick another port\n"
    )
    assert no_kafka == []


def test_up_refuses_a_kafka_port_that_is_taken_before_starting_anything(
    listening: int, tmp_path: pathlib.Path, no_kafka: list[dict[str, Any]]
) -> None:
    result = CliRunner().invoke(
        cli.cli,
        ["up", f"--api-port={free_port()}", f"--kafka-port={listening}", f"--workdir={tmp_path}"],
    )
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: port 127.0.0.1:{listening} is already in use (Kafka); "
        "stop whatever listens there or pick another port\n"
    )
    assert no_kafka == []


def test_up_refuses_the_same_port_for_the_api_and_kafka(
    tmp_path: pathlib.Path, no_kafka: list[dict[str, Any]]
) -> None:
    port = free_port()
    result = CliRunner().invoke(
        cli.cli, ["up", f"--api-port={port}", f"--kafka-port={port}", f"--workdir={tmp_path}"]
    )
    assert result.exit_code == 2, result.output
    assert result.output.endswith(
        f"Error: Invalid value: --api-port and --kafka-port are both {port}; they must differ.\n"
    )
    assert no_kafka == []


def test_a_pipeline_checks_its_fixed_ports_before_it_starts_kafka(
    listening: int, tmp_path: pathlib.Path, no_kafka: list[dict[str, Any]]
) -> None:
    local = pipeline.LocalPipeline(
        workdir=tmp_path, api_port=free_port(), kafka_port=free_port(), api_http_port=listening
    )
    with pytest.raises(pipeline.ServiceStartError) as raised:
        local.start()
    assert str(raised.value) == (
        f"port 127.0.0.1:{listening} is already in use (the API's HTTP probes); "
        "stop whatever listens there or pick another port"
    )
    assert no_kafka == []


def test_an_unknown_log_level_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli.cli, ["--log-level", "bogus", "kafka", "fetch"])
    assert result.exit_code == 2, result.output
    assert result.output.endswith(
        "Error: Invalid value for '--log-level': 'bogus' is not one of "
        "'debug', 'info', 'warning', 'error'.\n"
    )


def test_the_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    configured: list[tuple[str, ...]] = []
    monkeypatch.setattr(cli.logs, "configure", lambda *args: configured.append(args))
    result = CliRunner().invoke(cli.cli, ["--log-level", "debug", "kafka", "--help"])
    assert result.exit_code == 0, result.output
    assert configured == [("DEBUG", "text")]


class FakeKafka(NoKafka):
    """A broker that "starts" and records the topics it is asked to create."""

    topics: ClassVar[list[dict[str, int]]] = []

    def start(self, **_: Any) -> None:
        NoKafka.started.append(self.kwargs)

    def create_topics(self, topics: dict[str, int], **_: Any) -> None:
        FakeKafka.topics.append(topics)


@pytest.fixture
def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    FakeKafka.topics = []
    monkeypatch.setattr(cli.kafka_tools, "KafkaCluster", FakeKafka)
    monkeypatch.setattr(cli.kafka_tools, "describe", lambda cluster: "described")
    monkeypatch.setattr(cli, "_wait_for_signal", lambda: None)
    return FakeKafka.topics


def test_kafka_start_defaults_to_the_port_the_services_use(
    no_kafka: list[dict[str, Any]], fake_kafka: list[dict[str, int]]
) -> None:
    result = CliRunner().invoke(cli.cli, ["kafka", "start"])
    assert result.exit_code == 0, result.output
    assert no_kafka == [{"brokers": 1, "port": 9092, "version": cli.kafka_tools.KAFKA_VERSION}]
    assert fake_kafka == []


def test_kafka_start_creates_the_pipeline_topics_when_asked(
    no_kafka: list[dict[str, Any]], fake_kafka: list[dict[str, int]]
) -> None:
    result = CliRunner().invoke(cli.cli, ["kafka", "start", "--topics", "--partitions", "3"])
    assert result.exit_code == 0, result.output
    assert fake_kafka == [{"default-topic": 3, "greetings": 3, "default-topic.dlt": 1}]
    assert "topics: default-topic -> greetings, dead letters to default-topic.dlt" in (
        result.output
    )


def test_kafka_start_port_0_picks_a_free_port(
    no_kafka: list[dict[str, Any]], fake_kafka: list[dict[str, int]]
) -> None:
    result = CliRunner().invoke(cli.cli, ["kafka", "start", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert no_kafka == [{"brokers": 1, "port": None, "version": cli.kafka_tools.KAFKA_VERSION}]
