"""Run the whole pipeline as separate processes: Kafka, the API, consumers.

Used by ``hello-dev up`` and by end-to-end tests. Each service runs as its
own process exactly as in production (``hello-api``, ``hello-consumer``),
configured only through its environment variables.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

from hello_dev.kafka import KafkaCluster
from hello_dev.ports import free_port, port_in_use

logger = logging.getLogger(__name__)

INPUT_TOPIC = "default-topic"
OUTPUT_TOPIC = "greetings"
DEAD_LETTER_TOPIC = "default-topic.dlt"
DEFAULT_PARTITIONS = 6


def pipeline_topics(partitions: int = DEFAULT_PARTITIONS) -> dict[str, int]:
    """``{topic: partitions}`` of what the API and the consumer read and write."""
    return {INPUT_TOPIC: partitions, OUTPUT_TOPIC: partitions, DEAD_LETTER_TOPIC: 1}


class ServiceStartError(RuntimeError):
    """A service process exited or did not become ready; the message holds its log tail."""


@dataclass
class ServiceProcess:
    """One service process with its log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: pathlib.Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        logger.info(
            "started service",
            extra={"service": self.name, "pid": self.process.pid, "log": str(self.log_path)},
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServiceStartError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "service did not stop in time, killing it", extra={"service": self.name}
                )
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def _python_entry(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def api_process(
    *,
    bootstrap_servers: str,
    port: int,
    log_dir: pathlib.Path,
    http_port: int = 0,
    extra_env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    env = {
        **os.environ,
        "HELLO_API_KAFKA__BOOTSTRAP_SERVERS": bootstrap_servers,
        "HELLO_API_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "HELLO_API_HTTP_PORT": str(http_port),
        "HELLO_API_TOPIC": INPUT_TOPIC,
        **(extra_env or {}),
    }
    return ServiceProcess("api", _python_entry("hello_api"), env, log_dir / "api.log")


def consumer_process(
    *,
    bootstrap_servers: str,
    http_port: int,
    log_dir: pathlib.Path,
    index: int = 0,
    extra_env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    env = {
        **os.environ,
        "HELLO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS": bootstrap_servers,
        "HELLO_CONSUMER_HTTP_PORT": str(http_port),
        **(extra_env or {}),
    }
    return ServiceProcess(
        f"consumer-{index}", _python_entry("hello_consumer"), env, log_dir / f"consumer-{index}.log"
    )


def wait_api_ready(service: ServiceProcess, port: int, *, timeout: float = 60.0) -> None:
    """Wait for grpc.health.v1 to answer SERVING for the whole server."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            service.check_alive()
            with contextlib.suppress(grpc.RpcError):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.2)
    raise ServiceStartError(f"api not ready after {timeout:.0f}s:\n{service.log_tail()}")


def wait_http_ready(service: ServiceProcess, port: int, *, timeout: float = 60.0) -> None:
    """Wait for /readyz on the service's probe port to answer 200."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/readyz"
    while time.monotonic() < deadline:
        service.check_alive()
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=1) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise ServiceStartError(f"{service.name} not ready after {timeout:.0f}s:\n{service.log_tail()}")


@dataclass
class LocalPipeline:
    """Kafka + API + consumers on loopback, started in order and stopped in reverse."""

    workdir: pathlib.Path
    consumers: int = 1
    partitions: int = DEFAULT_PARTITIONS
    api_port: int | None = None
    kafka_port: int | None = None
    api_http_port: int = 0
    api_env: dict[str, str] = field(default_factory=dict)
    consumer_env: dict[str, str] = field(default_factory=dict)
    kafka: KafkaCluster | None = None
    api: ServiceProcess | None = None
    consumer_services: list[ServiceProcess] = field(default_factory=list)
    consumer_http_ports: list[int] = field(default_factory=list)
    # Transactional ids must not collide with another pipeline's consumers on
    # the same broker (they would fence each other); stable within this one,
    # so a restarted consumer fences its dead predecessor.
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def api_target(self) -> str:
        return f"127.0.0.1:{self.api_port}"

    def __enter__(self) -> LocalPipeline:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def check_ports(self) -> None:
        """Refuse, before anything starts, a fixed port that something already listens on.

        Otherwise a taken API port only shows once Kafka is up and the topics
        exist, when the API exits. Ports left to ``free_port()`` are not checked.
        """
        fixed = [
            (self.kafka_port if self.kafka is None else None, "Kafka"),
            (self.api_port, "the API's gRPC port"),
            (self.api_http_port, "the API's HTTP probes"),
        ]
        for port, what in fixed:
            if port and port_in_use(port):
                raise ServiceStartError(
                    f"port 127.0.0.1:{port} is already in use ({what}); "
                    "stop whatever listens there or pick another port"
                )

    def start(self) -> None:
        self.check_ports()
        try:
            if self.kafka is None:
                self.kafka = KafkaCluster(workdir=self.workdir / "kafka", port=self.kafka_port)
                self.kafka.start()
            self.kafka.create_topics(pipeline_topics(self.partitions))
            bootstrap = self.kafka.bootstrap_servers
            for index in range(self.consumers):
                self.start_consumer(index)
            self.api_port = self.api_port or free_port()
            self.api = api_process(
                bootstrap_servers=bootstrap,
                port=self.api_port,
                http_port=self.api_http_port,
                log_dir=self.workdir,
                extra_env=self.api_env,
            )
            self.api.start()
            wait_api_ready(self.api, self.api_port)
            for service, port in zip(self.consumer_services, self.consumer_http_ports, strict=True):
                wait_http_ready(service, port)
        except BaseException:
            self.stop()
            raise

    def start_consumer(self, index: int) -> ServiceProcess:
        assert self.kafka is not None
        port = free_port()
        service = consumer_process(
            bootstrap_servers=self.kafka.bootstrap_servers,
            http_port=port,
            log_dir=self.workdir,
            index=index,
            extra_env={
                "HELLO_CONSUMER_TRANSACTIONAL_ID": f"hello-consumer-local-{self.instance}-{index}",
                **self.consumer_env,
            },
        )
        service.start()
        self.consumer_services.append(service)
        self.consumer_http_ports.append(port)
        return service

    def dead_process(self) -> str | None:
        """Why the pipeline is broken, if one of its processes has exited."""
        for service in [*([self.api] if self.api else []), *self.consumer_services]:
            if service.process is not None and service.process.poll() is not None:
                return (
                    f"{service.name} exited with {service.process.returncode}; "
                    f"last lines of {service.log_path}:\n{service.log_tail(2000)}"
                )
        if self.kafka is not None:
            for node in self.kafka.nodes:
                if node.process is not None and node.process.poll() is not None:
                    return (
                        f"kafka node {node.node_id} exited with {node.process.returncode}; "
                        f"its last log lines:\n{node.log_tail(2000)}"
                    )
        return None

    def stop(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        if self.api is not None:
            codes[self.api.name] = self.api.stop()
        for service in self.consumer_services:
            codes[service.name] = service.stop()
        if self.kafka is not None:
            self.kafka.stop()
            self.kafka.delete_data()
            self.kafka = None
        return codes
