"""A stand-in for API + consumer: a HelloApi server that writes greetings to Kafka itself.

It lets the verification path be tested against a real broker with faults
we choose: ``--drop-every N`` never writes every N-th greeting and
``--duplicate-every M`` writes every M-th one twice. Records are produced
inside transactions, as the real consumer does, so the reader's
read_committed setting is exercised too.

    python -m tests.integration.loadtest.fake_pipeline --bootstrap-servers HOST:PORT

prints the bound port and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import uuid

import click
import grpc
from confluent_kafka import Producer

from hello_core.envelope import Greeting, SourcePosition, now_ms
from hello_proto import hello_pb2, hello_pb2_grpc


class _Writer:
    """Batches greetings into one Kafka transaction every 50 ms on a thread."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "transactional.id": f"fake-pipeline-{uuid.uuid4().hex[:8]}",
                "linger.ms": 1,
            }
        )
        self._producer.init_transactions(30)
        self._topic = topic
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, key: str, body: bytes) -> None:
        with self._lock:
            self._pending.append(key.encode() + b"\0" + body)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._flush()
        self._flush()

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        self._producer.begin_transaction()
        for item in batch:
            key, body = item.split(b"\0", 1)
            self._producer.produce(self._topic, key=key, value=body)
        self._producer.commit_transaction(30)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


class FakeServicer(hello_pb2_grpc.HelloApiServicer):
    def __init__(self, writer: _Writer, drop_every: int, duplicate_every: int) -> None:
        self._writer = writer
        self._drop_every = drop_every
        self._duplicate_every = duplicate_every
        self._calls = 0

    async def SayHello(self, request, unused_context):
        self._calls += 1
        message_id = uuid.uuid4().hex
        produced = now_ms()
        greeting = Greeting(
            id=message_id,
            name=request.name,
            greeting=f"Hello, {request.name}!",
            produced_at_ms=produced,
            processed_at_ms=produced + 3,
            source=SourcePosition("default-topic", 0, self._calls),
        ).encode()
        if not (self._drop_every and self._calls % self._drop_every == 0):
            self._writer.add(message_id, greeting)
            if self._duplicate_every and self._calls % self._duplicate_every == 0:
                self._writer.add(message_id, greeting)
        return hello_pb2.HelloReply(
            message=f"Hello, {request.name}!",
            message_id=message_id,
            topic="default-topic",
            partition=0,
            offset=self._calls,
        )


async def _serve(bootstrap: str, topic: str, drop_every: int, duplicate_every: int) -> None:
    writer = _Writer(bootstrap, topic)
    server = grpc.aio.server()
    hello_pb2_grpc.add_HelloApiServicer_to_server(
        FakeServicer(writer, drop_every, duplicate_every), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=1)
    writer.close()


@click.command()
@click.option("--bootstrap-servers", required=True)
@click.option("--topic", default="greetings")
@click.option("--drop-every", type=int, default=0)
@click.option("--duplicate-every", type=int, default=0)
def main(bootstrap_servers: str, topic: str, drop_every: int, duplicate_every: int) -> None:
    asyncio.run(_serve(bootstrap_servers, topic, drop_every, duplicate_every))


if __name__ == "__main__":
    main()
