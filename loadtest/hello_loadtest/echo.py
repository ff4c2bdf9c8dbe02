"""A bare grpc.aio HelloApi server that answers at once: the benchmark's baseline.

It does what the real API does minus Kafka: build the greeting and a fresh
message id. ``python -m hello_loadtest.echo --port 0`` prints the bound
port on stdout and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid

import click
import grpc  # type: ignore[import-untyped]

from hello_proto import hello_pb2, hello_pb2_grpc


class EchoServicer(hello_pb2_grpc.HelloApiServicer):
    async def SayHello(  # noqa: N802 - name fixed by the proto
        self, request: hello_pb2.HelloRequest, unused_context: grpc.aio.ServicerContext
    ) -> hello_pb2.HelloReply:
        return hello_pb2.HelloReply(
            message=f"Hello, {request.name}!",
            message_id=uuid.uuid4().hex,
            topic="echo",
            partition=0,
            offset=0,
        )


async def start(host: str = "127.0.0.1", port: int = 0) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    hello_pb2_grpc.add_HelloApiServicer_to_server(EchoServicer(), server)  # type: ignore[no-untyped-call]
    bound: int = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound


async def _serve(host: str, port: int) -> None:
    server, bound = await start(host, port)
    print(bound, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="0 picks a free port.")
def main(host: str, port: int) -> None:
    """Serve HelloApi without Kafka."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(host, port))
    sys.exit(0)


if __name__ == "__main__":
    main()
