"""A HelloApi server that counts the calls it received and can answer late.

    python -m tests.integration.loadtest.counting_server --delay 0.2

prints the bound port (127.0.0.1 only), then ``call <name>`` as each call
arrives (before the delay), so a test can wait for calls to be flowing and
see which ones came; serves until SIGTERM, then prints ``received=<n>``: the
calls that reached it, to hold a client's report to. Every line is flushed
when it is printed, so its stdout can be a file that a test reads meanwhile.
"""

from __future__ import annotations

import asyncio
import signal
import uuid

import click
import grpc

from hello_proto import hello_pb2, hello_pb2_grpc


class CountingServicer(hello_pb2_grpc.HelloApiServicer):
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.received = 0

    async def SayHello(self, request, unused_context):
        self.received += 1
        print(f"call {request.name}", flush=True)
        await asyncio.sleep(self.delay_s)
        return hello_pb2.HelloReply(
            message=f"Hello, {request.name}!",
            message_id=uuid.uuid4().hex,
            topic="counted",
            partition=0,
            offset=self.received,
        )


async def _serve(delay_s: float) -> None:
    servicer = CountingServicer(delay_s)
    server = grpc.aio.server()
    hello_pb2_grpc.add_HelloApiServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=0)
    print(f"received={servicer.received}", flush=True)


@click.command()
@click.option("--delay", "delay_s", type=float, default=0.0, help="Seconds before each reply.")
def main(delay_s: float) -> None:
    asyncio.run(_serve(delay_s))


if __name__ == "__main__":
    main()
