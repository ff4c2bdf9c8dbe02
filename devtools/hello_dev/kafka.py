"""A real Apache Kafka cluster (KRaft, no ZooKeeper) on 127.0.0.1.

The broker comes from Maven Central: a throw-away POM naming
``org.apache.kafka:kafka_2.13`` plus a log4j2 binding is resolved by
``mvn dependency:copy-dependencies`` into the cache (see ``paths.cache_dir``),
once per version. Each node is one ``kafka.Kafka`` JVM with combined
broker and controller roles and a static controller quorum, so a single
node and a three-node cluster are started the same way.

This is for development and tests: data lives in a temporary directory
and fsync is left to the OS page cache.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType

from hello_dev.paths import cache_dir
from hello_dev.ports import free_port, port_in_use

logger = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.25.3"

# The stock scripts start brokers with 1 GiB; tests run several at once.
DEFAULT_HEAP = "512m"
JVM_FLAGS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

_POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.hello-platform</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka-request.name = kafka.request.logger
logger.kafka-request.level = WARN
"""


# Connection-refused noise while a broker boots is expected; keep it at debug.
_quiet_client_logger = logging.getLogger(__name__ + ".client")


class KafkaToolingError(RuntimeError):
    """Kafka could not be fetched, formatted or started; the message says which step and why."""


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise KafkaToolingError(f"{tool!r} is not on PATH; {hint}")
    return path


def ensure_jars(version: str = KAFKA_VERSION) -> pathlib.Path:
    """The folder holding every jar Kafka ``version`` needs, resolving it on first use."""
    libdir = cache_dir() / "kafka" / version / "libs"
    marker = libdir / ".complete"
    if marker.exists():
        return libdir
    mvn = _require("mvn", "install Apache Maven 3.8+ (Debian: apt-get install maven)")
    _require("java", "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)")
    libdir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=libdir.parent) as tmp:
        work = pathlib.Path(tmp)
        (work / "pom.xml").write_text(
            _POM.format(scala=SCALA_VERSION, kafka=version, log4j=LOG4J_VERSION)
        )
        staged = work / "libs"
        logger.info(
            "resolving Kafka jars from Maven Central",
            extra={"version": version, "dest": str(libdir)},
        )
        started = time.monotonic()
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staged}",
                "-DincludeScope=runtime",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-3000:]
            raise KafkaToolingError(
                f"mvn dependency:copy-dependencies failed (exit {result.returncode}):\n{tail}"
            )
        if not any(staged.glob(f"kafka_{SCALA_VERSION}-{version}.jar")):
            raise KafkaToolingError(
                f"Maven finished but kafka_{SCALA_VERSION}-{version}.jar is missing"
            )
        if libdir.exists():
            shutil.rmtree(libdir)
        staged.rename(libdir)
        marker.write_text(version + "\n")
        logger.info(
            "resolved Kafka jars",
            extra={
                "version": version,
                "jars": len(list(libdir.glob("*.jar"))),
                "seconds": round(time.monotonic() - started, 1),
            },
        )
    return libdir


def random_cluster_id() -> str:
    """A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    home: pathlib.Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> pathlib.Path:
        return self.home / "server.properties"

    @property
    def log_path(self) -> pathlib.Path:
        return self.home / "logs" / "server.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        texts = []
        for path in (self.home / "stdout.log", self.log_path):
            if path.exists():
                texts.append(f"--- {path} ---\n" + path.read_text(errors="replace")[-chars:])
        return "\n".join(texts)


@dataclass
class KafkaCluster:
    """One or more combined broker/controller nodes on loopback.

    Use as a context manager, or call ``start()`` and ``stop()``. Nodes can be
    stopped and restarted one by one (``stop_node``/``start_node``) to test
    failover; their data survives until the cluster is stopped.
    """

    brokers: int = 1
    version: str = KAFKA_VERSION
    heap: str = DEFAULT_HEAP
    workdir: pathlib.Path | None = None
    port: int | None = None
    extra_properties: dict[str, str] = field(default_factory=dict)
    nodes: list[KafkaNode] = field(default_factory=list, init=False)
    cluster_id: str | None = field(default=None, init=False)
    _own_workdir: bool = field(default=False, init=False)
    _libdir: pathlib.Path | None = field(default=None, init=False)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, *, timeout: float = 120.0) -> None:
        if self.brokers < 1:
            raise ValueError("a cluster needs at least one broker")
        self._libdir = ensure_jars(self.version)
        if self.workdir is None:
            self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="hello-kafka-"))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = [
            KafkaNode(
                node_id=i,
                port=self.port if (self.port and self.brokers == 1) else free_port(),
                controller_port=free_port(),
                home=self.workdir / f"node-{i}",
            )
            for i in range(1, self.brokers + 1)
        ]
        for node in self.nodes:
            for port in (node.port, node.controller_port):
                if port_in_use(port):
                    raise KafkaToolingError(
                        f"port 127.0.0.1:{port} is already in use; stop whatever listens "
                        "there or pick another port"
                    )
        self.cluster_id = random_cluster_id()
        cluster_id = self.cluster_id
        try:
            for node in self.nodes:
                self._write_config(node)
                self._format(node, cluster_id)
            for node in self.nodes:
                self._spawn(node)
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        logger.info(
            "kafka cluster ready",
            extra={
                "brokers": self.brokers,
                "bootstrap_servers": self.bootstrap_servers,
                "version": self.version,
                "workdir": str(self.workdir),
            },
        )

    def _write_config(self, node: KafkaNode) -> None:
        node.home.mkdir(parents=True, exist_ok=True)
        (node.home / "logs").mkdir(exist_ok=True)
        replication = min(3, self.brokers)
        min_isr = 2 if replication >= 3 else 1
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(node.home / "data"),
            "num.partitions": "1",
            "default.replication.factor": str(replication),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(replication),
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": str(replication),
            "transaction.state.log.min.isr": str(min_isr),
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": str(replication),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            **self.extra_properties,
        }
        node.config_path.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        (node.home / "log4j2.properties").write_text(_LOG4J2)

    def _java(self, node: KafkaNode, main: str, *args: str) -> list[str]:
        assert self._libdir is not None
        return [
            _require("java", "install a Java 17+ runtime"),
            "-Xms128m",
            f"-Xmx{self.heap}",
            *JVM_FLAGS,
            f"-Dkafka.logs.dir={node.home / 'logs'}",
            f"-Dlog4j2.configurationFile={node.home / 'log4j2.properties'}",
            "-cp",
            f"{self._libdir}/*",
            main,
            *args,
        ]

    def _format(self, node: KafkaNode, cluster_id: str) -> None:
        command = self._java(
            node, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(node.config_path)
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KafkaToolingError(
                f"formatting node {node.node_id} failed (exit {result.returncode}):\n"
                + (result.stdout + result.stderr)[-3000:]
            )

    def _spawn(self, node: KafkaNode) -> None:
        with (node.home / "stdout.log").open("ab") as out:
            node.process = subprocess.Popen(
                self._java(node, "kafka.Kafka", str(node.config_path)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        logger.info(
            "started kafka node",
            extra={"node_id": node.node_id, "port": node.port, "pid": node.process.pid},
        )

    def wait_ready(self, *, timeout: float = 120.0) -> None:
        """Block until every running node serves metadata naming all running brokers."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        want = {n.node_id for n in self.nodes if n.running or n.process is None}
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise KafkaToolingError(
                        f"kafka node {node.node_id} exited with {node.process.returncode}\n"
                        + node.log_tail()
                    )
            try:
                admin = AdminClient(
                    {"bootstrap.servers": self.bootstrap_servers, "logger": _quiet_client_logger}  # type: ignore[dict-item]
                )
                metadata = admin.list_topics(timeout=2)
                seen = set(metadata.brokers)
                if metadata.cluster_id != self.cluster_id:
                    # Another cluster answers on our port: never hand it out as ours.
                    raise KafkaToolingError(
                        f"{self.bootstrap_servers} is served by another Kafka cluster "
                        f"({metadata.cluster_id}, expected {self.cluster_id})"
                    )
                if want <= seen:
                    return
                last_error = f"brokers in metadata {sorted(seen)}, want {sorted(want)}"
            except KafkaToolingError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure here means "not ready yet"
                last_error = str(exc)
            time.sleep(0.3)
        tails = "\n".join(node.log_tail() for node in self.nodes)
        raise KafkaToolingError(f"kafka not ready after {timeout:.0f}s ({last_error})\n{tails}")

    def stop_node(self, node_id: int, *, kill: bool = False, timeout: float = 30.0) -> None:
        node = self._node(node_id)
        if node.process is None or node.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            # A frozen (SIGSTOPped) broker acts on SIGTERM only once continued.
            os.killpg(node.process.pid, signal.SIGCONT)
        try:
            node.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning(
                "kafka node did not stop in time, killing it", extra={"node_id": node_id}
            )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait(timeout=30)
        logger.info(
            "stopped kafka node", extra={"node_id": node_id, "exit_code": node.process.returncode}
        )

    def start_node(self, node_id: int, *, timeout: float = 120.0) -> None:
        node = self._node(node_id)
        if node.running:
            return
        self._spawn(node)
        self.wait_ready(timeout=timeout)

    def _node(self, node_id: int) -> KafkaNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id}; nodes are {[n.node_id for n in self.nodes]}")

    def stop(self) -> None:
        for node in self.nodes:
            self.stop_node(node.node_id)
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def delete_data(self) -> None:
        """Remove the stopped nodes' log directories; their server logs stay."""
        for node in self.nodes:
            if not node.running:
                shutil.rmtree(node.home / "data", ignore_errors=True)

    def create_topics(self, topics: dict[str, int], *, timeout: float = 30.0) -> None:
        """Create ``{name: partitions}`` topics; existing ones are left as they are."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

        admin = AdminClient(
            {"bootstrap.servers": self.bootstrap_servers, "logger": _quiet_client_logger}  # type: ignore[dict-item]
        )
        replication = min(3, self.brokers)
        futures = admin.create_topics(
            [NewTopic(name, partitions, replication) for name, partitions in topics.items()],
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                logger.debug("topic exists", extra={"topic": name})
        # Creation is acknowledged by the controller before every broker's
        # metadata has the topic, and each broker learns it on its own time:
        # wait until every running node knows it, so callers can use it at
        # once whichever broker they ask.
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if not node.running:
                continue
            # A client that knows only this node, so this node answers.
            own = AdminClient(
                {"bootstrap.servers": f"127.0.0.1:{node.port}", "logger": _quiet_client_logger}  # type: ignore[dict-item]
            )
            while True:
                metadata = own.list_topics(timeout=5)
                pending = [
                    name
                    for name, partitions in topics.items()
                    if name not in metadata.topics
                    or len(metadata.topics[name].partitions) < partitions
                    or any(p.leader < 0 for p in metadata.topics[name].partitions.values())
                ]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    raise KafkaToolingError(
                        f"topics not ready on node {node.node_id} after {timeout:.0f}s: {pending}"
                    )
                time.sleep(0.1)


def describe(cluster: KafkaCluster) -> str:
    return textwrap.dedent(
        f"""\
        Kafka {cluster.version} (KRaft) with {cluster.brokers} node(s)
          bootstrap servers: {cluster.bootstrap_servers}
          data: {cluster.workdir}
        """
    )
