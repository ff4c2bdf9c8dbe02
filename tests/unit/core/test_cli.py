"""The services' command line: --help and --version never start anything."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hello_api.settings import ApiSettings
from hello_consumer.settings import ConsumerSettings
from hello_core.cli import service_command, settings_rows

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_")}


def test_settings_rows_list_every_variable_with_its_default() -> None:
    rows = {variable: default for variable, default, _ in settings_rows(ApiSettings)}
    assert rows["HELLO_API_LISTEN_ADDRESS"] == "127.0.0.1:50051"
    # None until a validator names the client after the service (see with_client_id).
    assert rows["HELLO_API_KAFKA__CLIENT_ID"] == "unset"
    assert rows["HELLO_API_KAFKA__SASL_PASSWORD"] == "unset"
    assert rows["HELLO_API_KAFKA__EXTRA"] == "{}"
    assert rows["HELLO_API_LOG__LEVEL"] == "INFO"
    consumer = {variable: default for variable, default, _ in settings_rows(ConsumerSettings)}
    assert consumer["HELLO_CONSUMER_KAFKA__CLIENT_ID"] == "unset"
    assert consumer["HELLO_CONSUMER_HTTP_HOST"] == "127.0.0.1"


def test_help_describes_the_service_and_does_not_run_it() -> None:
    ran: list[bool] = []
    command = service_command(
        prog_name="hello-x",
        summary="Do the x thing.",
        settings_cls=ApiSettings,
        run=lambda: ran.append(True) or 0,
    )
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    assert ran == []
    assert "Do the x thing." in result.output
    assert "Configuration comes only from environment variables" in result.output
    assert "HELLO_API_DELIVERY_TIMEOUT_MS (10000)" in result.output


def test_unknown_arguments_are_refused_without_running() -> None:
    ran: list[bool] = []
    command = service_command(
        prog_name="hello-x",
        summary="x",
        settings_cls=ApiSettings,
        run=lambda: ran.append(True) or 0,
    )
    result = CliRunner().invoke(command, ["--port", "1"])
    assert result.exit_code == 2
    assert ran == []
    assert "Error: No such option '--port'." in result.output


@pytest.mark.parametrize(
    ("module", "prog"), [("hello_api", "hello-api"), ("hello_consumer", "hello-consumer")]
)
def test_entry_point_help_and_version_exit_at_once(module: str, prog: str) -> None:
    help_run = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert help_run.returncode == 0, help_run.stderr
    assert help_run.stdout.startswith(f"Usage: {prog} [OPTIONS]")
    version = subprocess.run(
        [sys.executable, "-m", module, "--version"],
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert version.stdout == f"{prog}, version 0.1.0\n"


@pytest.mark.parametrize(
    ("module", "prog", "prefix"),
    [
        ("hello_api", "hello-api", "HELLO_API_"),
        ("hello_consumer", "hello-consumer", "HELLO_CONSUMER_"),
    ],
)
def test_probe_port_in_use_is_one_line_and_exit_2(module: str, prog: str, prefix: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**CLEAN_ENV, f"{prefix}HTTP_HOST": "127.0.0.1", f"{prefix}HTTP_PORT": str(port)}
        result = subprocess.run(
            [sys.executable, "-m", module],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 2
    assert result.stderr == (
        f"{prog}: cannot listen on 127.0.0.1:{port} ({prefix}HTTP_PORT): Address already in use\n"
    )


@pytest.mark.parametrize(
    ("module", "prog", "prefix"),
    [
        ("hello_api", "hello-api", "HELLO_API_"),
        ("hello_consumer", "hello-consumer", "HELLO_CONSUMER_"),
    ],
)
def test_unknown_kafka_property_is_one_line_and_exit_2(module: str, prog: str, prefix: str) -> None:
    env = {**CLEAN_ENV, f"{prefix}HTTP_PORT": "0", f"{prefix}KAFKA__EXTRA": '{"no.such.prop": 1}'}
    result = subprocess.run(
        [sys.executable, "-m", module],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"{prog}: invalid Kafka client configuration: "
        'No such configuration property: "no.such.prop" '
        f"(check {prefix}KAFKA__EXTRA and related settings)\n"
    )


def test_bad_setting_is_one_line_and_exit_2() -> None:
    env = {**CLEAN_ENV, "HELLO_API_LISTEN_ADDRESS": "garbage"}
    result = subprocess.run(
        [sys.executable, "-m", "hello_api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "hello-api: invalid settings: HELLO_API_LISTEN_ADDRESS: Value error, "
        "'garbage' is not host:port (got 'garbage')\n"
    )
