"""``hello``: a small command-line client for the API.

hello say Alice                      # -> Hello, Alice!
hello --target 127.0.0.1:50051 say Bob --verbose
"""

from __future__ import annotations

import sys

import click
import grpc

from hello_proto import hello_pb2, hello_pb2_grpc

# Above the API's default 10 s delivery timeout, so that when Kafka is slow
# the server's UNAVAILABLE arrives before our own DEADLINE_EXCEEDED.
DEFAULT_TIMEOUT_SECONDS = 15.0

# Errors a person can act on, by status; anything else prints gRPC's own words.
_HINTS = {
    grpc.StatusCode.UNAVAILABLE: "is the API running and Kafka reachable? The message may "
    "still have been written, so a retry can greet twice",
    grpc.StatusCode.DEADLINE_EXCEEDED: "raise --timeout, or check the broker's health; the "
    "message may still be delivered",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "the API's producer queue is full; retry with backoff",
}
# gRPC's own words for a message over the server's size limit.
_TOO_LARGE = "Received message larger than max"
_TOO_LARGE_HINT = "the request is larger than the API accepts; do not retry, shorten the name"


# gRPC's words when no connection to the API could be made: nothing was sent.
_NOT_CONNECTED = ("failed to connect to all addresses", "DNS resolution failed")
_NOT_CONNECTED_HINT = "is the API running at --target? Nothing was sent, so a retry is safe"
_NO_TOPIC_HINT = "create the topic, or fix HELLO_API_TOPIC; nothing was written"


def hint_for(code: grpc.StatusCode, details: str) -> str | None:
    """What the person at the terminal can do about a failed call, if we know."""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE in details:
        return _TOO_LARGE_HINT
    if code == grpc.StatusCode.UNAVAILABLE:
        if any(words in details for words in _NOT_CONNECTED):
            return _NOT_CONNECTED_HINT
        if "does not exist; nothing was written" in details:
            return _NO_TOPIC_HINT
    return _HINTS.get(code)


@click.group()
@click.option(
    "--target",
    "-t",
    default="127.0.0.1:50051",
    show_default=True,
    envvar="HELLO_TARGET",
    help="host:port of the API.",
)
@click.option(
    "--timeout",
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Deadline per call, seconds; above the API's delivery timeout (10 s).",
)
@click.pass_context
def cli(ctx: click.Context, target: str, timeout: float) -> None:
    """Talk to a hello-platform API."""
    ctx.obj = {"target": target, "timeout": timeout}


@cli.command()
@click.argument("name")
@click.option("--verbose", "-v", is_flag=True, help="Also print message id and Kafka position.")
@click.pass_obj
def say(obj: dict[str, object], name: str, verbose: bool) -> None:
    """Send SayHello(NAME) and print the reply."""
    target = str(obj["target"])
    timeout = float(obj["timeout"])  # type: ignore[arg-type]
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Bytes that are not UTF-8 reach Python as lone surrogates.
        raise click.BadParameter(
            f"is not valid UTF-8 (byte 0x{ord(name[exc.start]) & 0xFF:02x} at position "
            f"{exc.start})",
            param_hint="NAME",
        ) from None
    with grpc.insecure_channel(target) as channel:
        stub = hello_pb2_grpc.HelloApiStub(channel)  # type: ignore[no-untyped-call]
        try:
            reply = stub.SayHello(hello_pb2.HelloRequest(name=name), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            details = exc.details() or ""  # type: ignore[attr-defined]
            hint = hint_for(code, details)
            click.echo(f"error: {code.name}: {details}", err=True)
            if hint:
                click.echo(f"hint: {hint}", err=True)
            sys.exit(1)
    click.echo(reply.message)
    if verbose:
        click.echo(
            f"message_id={reply.message_id} topic={reply.topic} "
            f"partition={reply.partition} offset={reply.offset}"
        )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
