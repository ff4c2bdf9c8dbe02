"""`hello-dev up` and `hello say`, run as a user runs them."""

from __future__ import annotations

import os
import pathlib
import selectors
import signal
import subprocess
import sys
import time

from hello_dev.ports import free_port


def read_until(process: subprocess.Popen[bytes], marker: str, *, timeout: float) -> str:
    """Unbuffered reads of the process's stdout until ``marker`` shows up."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen and time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
    selector.close()
    return seen.decode()


def test_one_command_runs_the_pipeline_and_the_client_gets_its_greeting(
    tmp_path: pathlib.Path,
) -> None:
    api_port, kafka_port = free_port(), free_port()
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hello_dev.cli",
            "up",
            f"--api-port={api_port}",
            f"--kafka-port={kafka_port}",
            f"--workdir={tmp_path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        banner = read_until(up, "Ctrl-C stops everything.", timeout=180)
        assert f"gRPC API:   127.0.0.1:{api_port}" in banner, banner
        assert f"Kafka:      127.0.0.1:{kafka_port}" in banner

        env = {**os.environ, "HELLO_TARGET": f"127.0.0.1:{api_port}"}
        client = [sys.executable, "-m", "hello_api.client"]
        ok = subprocess.run([*client, "say", "Ada", "-v"], env=env, capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        lines = ok.stdout.splitlines()
        assert lines[0] == "Hello, Ada!"
        assert lines[1].startswith("message_id=") and "topic=default-topic" in lines[1]

        bad = subprocess.run([*client, "say", " "], env=env, capture_output=True, text=True)
        assert bad.returncode == 1
        assert bad.stderr == "error: INVALID_ARGUMENT: name must not be empty or only whitespace\n"
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
        assert up.stdout is not None
        up.stdout.close()
    assert code == 0
    assert (tmp_path / "api.log").exists() and (tmp_path / "consumer-0.log").exists()


def test_client_explains_an_unreachable_api() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hello_api.client",
            "-t",
            f"127.0.0.1:{free_port()}",
            "--timeout",
            "2",
            "say",
            "Ada",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: UNAVAILABLE: ")
    # Nothing listens there: the call never left, so retrying cannot duplicate.
    assert result.stderr.endswith(
        "hint: is the API running at --target? Nothing was sent, so a retry is safe\n"
    )


def test_up_refuses_a_kafka_port_that_is_taken_instead_of_using_whatever_answers(
    tmp_path: pathlib.Path,
) -> None:
    import socket

    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "hello_dev.cli",
                "up",
                f"--kafka-port={taken}",
                f"--api-port={free_port()}",
                f"--workdir={tmp_path}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert f"Error: port 127.0.0.1:{taken} is already in use" in result.stderr
