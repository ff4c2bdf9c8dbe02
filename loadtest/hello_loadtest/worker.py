"""One load-generating process: gRPC channels around the dispatch loop.

``worker_main`` is the target of each spawned process. It reports over a
queue: ``("ready", worker, error)`` once its channels are set up,
``("tick", worker, completed, window)`` twice a second for the live
progress, and ``("done", worker, RecorderExport)`` at the end (or
``("failed", worker, message)``). The parent tells every worker the same
wall-clock start time, so processes share one schedule. A second message on
the same pipe (or the pipe closing) asks the worker to stop starting calls:
it then waits for the calls in flight and reports ``done`` as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import grpc  # type: ignore[import-untyped]

from hello_loadtest.dispatch import CallResult, LoopClock, Stop, run_closed, run_open
from hello_loadtest.names import NameKind, name_generator
from hello_loadtest.schedule import (
    ArrivalProcess,
    ClosedScenario,
    OpenScenario,
    arrivals,
    closed_loops_for,
    shard,
)
from hello_loadtest.stats import Recorder
from hello_proto import hello_pb2, hello_pb2_grpc

logger = logging.getLogger(__name__)

TICK_S = 0.5
# How long a worker waits for its channel to connect before it starts anyway
# (calls then fail with UNAVAILABLE, which the report shows).
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Target:
    address: str = "127.0.0.1:50051"
    tls: bool = False
    ca_file: str | None = None
    server_name: str | None = None
    token: str | None = None

    def __repr__(self) -> str:  # the token is a secret
        token = "***" if self.token else None
        return f"Target(address={self.address!r}, tls={self.tls}, token={token})"


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """What every worker needs to know; the same for all but ``worker``."""

    scenario: OpenScenario | ClosedScenario
    workers: int
    arrivals: ArrivalProcess = "uniform"
    seed: int = 0
    names: NameKind = "sequence"
    name_prefix: str = "load"
    deadline_s: float = 1.0
    max_in_flight: int = 1000
    connections: int = 1
    late_threshold_s: float = 0.005
    interval_s: int = 1
    keep_ids: bool = False
    # Starting stops this long after the schedule's end if the generator fell behind.
    overrun_s: float = 5.0
    max_calls: int | None = None

    @property
    def schedule_s(self) -> float:
        return self.scenario.warmup_s + self.scenario.duration_s


def make_channel(target: Target) -> grpc.aio.Channel:
    # Without a local subchannel pool, channels to one address share one
    # HTTP/2 connection, and --connections would change nothing.
    options: list[tuple[str, Any]] = [("grpc.use_local_subchannel_pool", 1)]
    if not target.tls:
        return grpc.aio.insecure_channel(target.address, options=options)
    root = None
    if target.ca_file:
        with open(target.ca_file, "rb") as handle:
            root = handle.read()
    if target.server_name:
        options.append(("grpc.ssl_target_name_override", target.server_name))
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    return grpc.aio.secure_channel(target.address, credentials, options=options)


async def _run(plan: WorkerPlan, worker: int, target: Target, start: Connection, out: Any) -> None:
    channels = [make_channel(target) for _ in range(plan.connections)]
    stubs = [hello_pb2_grpc.HelloApiStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
    metadata = (("authorization", f"Bearer {target.token}"),) if target.token else None
    names = name_generator(plan.names, prefix=plan.name_prefix, seed=plan.seed)
    error = None
    try:
        await asyncio.wait_for(
            asyncio.gather(*(ch.channel_ready() for ch in channels)), CONNECT_TIMEOUT_S
        )
    except TimeoutError:
        error = f"could not connect to {target.address} in {CONNECT_TIMEOUT_S:.0f}s"
        logger.warning("channel not ready target=%s", target.address)
    out.put(("ready", worker, error))

    loop = asyncio.get_running_loop()
    start_epoch = await loop.run_in_executor(None, start.recv)
    clock = LoopClock()
    start_at = clock.now() + (start_epoch - time.time())
    stop = Stop()

    def on_stop_message() -> None:
        loop.remove_reader(start.fileno())
        # The message itself says nothing more; EOF (the parent went away) stops too.
        with contextlib.suppress(EOFError, OSError):
            start.recv()
        stop.request(clock.now())

    loop.add_reader(start.fileno(), on_stop_message)

    recorder = Recorder(
        interval_s=plan.interval_s,
        warmup_s=plan.scenario.warmup_s,
        late_threshold_s=plan.late_threshold_s,
        keep_ids=plan.keep_ids,
    )

    async def call(index: int) -> CallResult:
        stub = stubs[index % len(stubs)]
        try:
            reply = await stub.SayHello(
                hello_pb2.HelloRequest(name=names(index)),
                timeout=plan.deadline_s,
                metadata=metadata,
            )
        except grpc.aio.AioRpcError as exc:
            return (exc.code().name, None)
        return ("OK", reply.message_id)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(TICK_S)
            completed, window = recorder.take_window()
            out.put(("tick", worker, completed, window))

    await clock.sleep_until(start_at)
    cpu0, wall0 = time.process_time(), time.monotonic()
    ticks = asyncio.create_task(ticker())
    try:
        if isinstance(plan.scenario, OpenScenario):
            schedule = shard(
                arrivals(plan.scenario, process=plan.arrivals, seed=plan.seed),
                worker,
                plan.workers,
            )
            await run_open(
                schedule,
                clock=clock,
                start_at=start_at,
                stop_at=start_at + plan.schedule_s + plan.overrun_s,
                recorder=recorder,
                call=call,
                max_in_flight=plan.max_in_flight,
                stop=stop,
            )
        else:
            await run_closed(
                loops=closed_loops_for(worker, plan.workers, plan.scenario.concurrency),
                clock=clock,
                start_at=start_at,
                end_at=start_at + plan.schedule_s,
                recorder=recorder,
                call=call,
                first_index=worker,
                index_step=plan.workers,
                max_calls=None if plan.max_calls is None else -(-plan.max_calls // plan.workers),
                stop=stop,
            )
    finally:
        loop.remove_reader(start.fileno())
        ticks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticks
        for ch in channels:
            await ch.close()
    wall = time.monotonic() - wall0
    recorder.cpu_utilization = (time.process_time() - cpu0) / wall if wall > 0 else 0.0
    if stop.at is not None:
        recorder.stopped_s = max(stop.at - start_at, 0.0)
    completed, window = recorder.take_window()
    out.put(("tick", worker, completed, window))
    out.put(("done", worker, recorder.export()))


def worker_main(plan: WorkerPlan, worker: int, target: Target, start: Connection, out: Any) -> None:
    """Process entry point (spawned, so it imports nothing from the parent's state)."""
    # Ctrl-C reaches the whole process group; the parent decides what happens
    # (it stops the workers), so a worker never dies mid-call with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(_run(plan, worker, target, start, out))
    except Exception as exc:
        logger.exception("worker failed worker=%d", worker)
        out.put(("failed", worker, f"{type(exc).__name__}: {exc}"))
