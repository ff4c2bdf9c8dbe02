"""Running a load test across worker processes and merging what they measured."""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hello_loadtest.stats import Merged, RecorderExport, merge
from hello_loadtest.worker import Target, WorkerPlan, worker_main

logger = logging.getLogger(__name__)

# Workers get this long to import gRPC and connect before the start time is set.
READY_TIMEOUT_S = 60.0
# Lead time between telling the workers the start time and that time.
START_LEAD_S = 0.3
# After the schedule (plus overrun and deadline) a worker still running is stopped.
FINISH_GRACE_S = 30.0


class RunError(RuntimeError):
    """The run could not be carried out (a worker failed or hung)."""


@dataclass(slots=True)
class Tick:
    worker: int
    completed: int
    window: bytes


@dataclass(slots=True)
class RunResult:
    merged: Merged
    started_at: str
    finished_at: str
    connect_errors: list[str] = field(default_factory=list)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run(
    plan: WorkerPlan,
    target: Target,
    *,
    on_start: Callable[[float], None] | None = None,
    on_tick: Callable[[Tick], None] | None = None,
) -> RunResult:
    """Spawn ``plan.workers`` processes, start them together and merge their exports.

    ``on_start`` gets the shared start time (``time.time()`` base) and
    ``on_tick`` each progress message, both in this process.
    """
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    pipes = []
    processes = []
    for worker in range(plan.workers):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=worker_main,
            args=(plan, worker, target, receive, out),
            name=f"hello-load-worker-{worker}",
            daemon=True,
        )
        proc.start()
        pipes.append(send)
        processes.append(proc)
    try:
        return _drive(plan, out, pipes, processes, on_start, on_tick)
    except KeyboardInterrupt:
        # The workers ignore SIGINT; stop them here rather than wait for the schedule.
        for proc in processes:
            proc.terminate()
        raise
    finally:
        for proc in processes:
            proc.join(timeout=5)
            if proc.is_alive():
                logger.warning("stopping a worker that did not exit pid=%s", proc.pid)
                proc.terminate()
                proc.join(timeout=5)
        out.close()


def _drive(
    plan: WorkerPlan,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
    pipes: list,  # type: ignore[type-arg]
    processes: list,  # type: ignore[type-arg]
    on_start: Callable[[float], None] | None,
    on_tick: Callable[[Tick], None] | None,
) -> RunResult:
    connect_errors = []
    ready: set[int] = set()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while len(ready) < plan.workers:
        kind, worker, *rest = _get(out, deadline, processes, "starting")
        if kind == "ready":
            ready.add(worker)
            if rest[0]:
                connect_errors.append(rest[0])
        elif kind == "failed":
            raise RunError(f"worker {worker} failed while starting: {rest[0]}")

    start_epoch = time.time() + START_LEAD_S
    for pipe in pipes:
        pipe.send(start_epoch)
    started_at = datetime.fromtimestamp(start_epoch, UTC)
    if on_start:
        on_start(start_epoch)

    exports: dict[int, RecorderExport] = {}
    finish_by = (
        time.monotonic()
        + START_LEAD_S
        + plan.schedule_s
        + plan.overrun_s
        + plan.deadline_s
        + FINISH_GRACE_S
    )
    while len(exports) < plan.workers:
        kind, worker, *rest = _get(out, finish_by, processes, "running")
        if kind == "tick" and on_tick:
            on_tick(Tick(worker, rest[0], rest[1]))
        elif kind == "done":
            exports[worker] = rest[0]
        elif kind == "failed":
            raise RunError(f"worker {worker} failed: {rest[0]}")
    return RunResult(
        merged=merge([exports[w] for w in sorted(exports)]),
        started_at=started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        finished_at=_utc_now(),
        connect_errors=connect_errors,
    )


def _get(
    out: multiprocessing.Queue,  # type: ignore[type-arg]
    deadline: float,
    processes: list,  # type: ignore[type-arg]
    stage: str,
) -> tuple:  # type: ignore[type-arg]
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunError(f"workers did not finish {stage} in time")
        try:
            message: tuple = out.get(timeout=min(remaining, 0.5))  # type: ignore[type-arg]
            return message
        except queue.Empty:
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise RunError(
                    f"worker process {dead[0].name} exited with code {dead[0].exitcode}"
                ) from None
