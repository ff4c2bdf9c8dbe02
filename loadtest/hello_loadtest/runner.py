"""Running a load test across worker processes and merging what they measured.

Ctrl-C (SIGINT) while the schedule runs does not lose the run: the first one
asks every worker to stop starting calls, waits up to the call deadline (plus
``STOP_GRACE_S``) for the calls in flight, and returns what was measured with
``interrupted`` set. A second Ctrl-C, one before the start, or workers that
do not finish in time stop the workers and raise ``RunInterrupted``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
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
# After a stop request, on top of the call deadline: for the workers to close
# their channels and send their exports.
STOP_GRACE_S = 5.0
# How often the parent looks at the queue and at a pending Ctrl-C.
POLL_S = 0.1


class RunError(RuntimeError):
    """The run could not be carried out (a worker failed or hung)."""


class RunInterrupted(Exception):  # noqa: N818 - it is not an error of the run
    """Ctrl-C ended the run with nothing to report; the message says why."""


class _Interrupts:
    """SIGINT in the parent: the first asks for a stop, the next one exits at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


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
    # Ctrl-C stopped the schedule; merged.stopped_s says when.
    interrupted: bool = False


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run(
    plan: WorkerPlan,
    target: Target,
    *,
    on_start: Callable[[float], None] | None = None,
    on_tick: Callable[[Tick], None] | None = None,
    on_stop: Callable[[float], None] | None = None,
) -> RunResult:
    """Spawn ``plan.workers`` processes, start them together and merge their exports.

    ``on_start`` gets the shared start time (``time.time()`` base) and
    ``on_tick`` each progress message, both in this process. ``on_stop``
    gets the longest it will wait for calls in flight after the first Ctrl-C.
    Ctrl-C is handled this way only when ``run`` is called in the main thread.
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
    interrupts = _Interrupts()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, interrupts)
    try:
        return _drive(plan, out, pipes, processes, interrupts, on_start, on_tick, on_stop)
    except (KeyboardInterrupt, RunInterrupted) as exc:
        # The workers ignore SIGINT; stop them here rather than wait for the schedule.
        for proc in processes:
            proc.terminate()
        if isinstance(exc, RunInterrupted):
            raise
        raise RunInterrupted("interrupted again; workers stopped, no report written") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
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
    interrupts: _Interrupts,
    on_start: Callable[[float], None] | None,
    on_tick: Callable[[Tick], None] | None,
    on_stop: Callable[[float], None] | None,
) -> RunResult:
    connect_errors = []
    ready: set[int] = set()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while len(ready) < plan.workers:
        message = _get(out, deadline, processes, "starting")
        if interrupts.requested:
            raise RunInterrupted("interrupted before the run started; no report written")
        if message is None:
            continue
        kind, worker, *rest = message
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
    stopping, wait_s = False, plan.deadline_s + STOP_GRACE_S
    while len(exports) < plan.workers:
        if interrupts.requested and not stopping:
            stopping = True
            finish_by = time.monotonic() + wait_s
            for pipe in pipes:
                # A worker that has already finished has closed its end.
                with contextlib.suppress(OSError):
                    pipe.send("stop")
            if on_stop:
                on_stop(plan.deadline_s)
        try:
            message = _get(out, finish_by, processes, "running")
        except RunError as exc:
            if stopping:
                raise RunInterrupted(
                    f"interrupted; workers did not stop within {wait_s:g}s, no report written"
                ) from exc
            raise
        if message is None:
            continue
        kind, worker, *rest = message
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
        interrupted=stopping,
    )


def _get(
    out: multiprocessing.Queue,  # type: ignore[type-arg]
    deadline: float,
    processes: list,  # type: ignore[type-arg]
    stage: str,
) -> tuple | None:  # type: ignore[type-arg]
    """The next message, or None after ``POLL_S`` without one (to look at Ctrl-C)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise RunError(f"workers did not finish {stage} in time")
    try:
        message: tuple = out.get(timeout=min(remaining, POLL_S))  # type: ignore[type-arg]
        return message
    except queue.Empty:
        dead = [p for p in processes if p.exitcode not in (None, 0)]
        if dead:
            raise RunError(
                f"worker process {dead[0].name} exited with code {dead[0].exitcode}"
            ) from None
        return None
