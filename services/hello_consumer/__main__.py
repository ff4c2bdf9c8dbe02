"""Entry point: ``hello-consumer`` (or ``python -m hello_consumer``)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

from hello_consumer.loop import ConsumerLoop, FatalConsumerError
from hello_consumer.settings import ENV_PREFIX, ConsumerSettings
from hello_consumer.watchdog import watch
from hello_core import logs, telemetry
from hello_core.cli import fail, service_command
from hello_core.errors import ConfigError
from hello_core.http import ProbeServer, listen_failure
from hello_core.kafka import invalid_config
from hello_core.settings import load_settings

PROG = "hello-consumer"

SUMMARY = """Turn greeting requests from Kafka into greeting records, exactly once.

Joins the consumer group, and for each batch writes the greetings (and the
dead letters of what it cannot process) in one Kafka transaction together
with the consumed offsets. Serves /metrics, /livez and /readyz over HTTP.
SIGTERM finishes the current batch, commits and leaves the group. Exit
codes: 0 clean stop, 1 fatal Kafka error, crash, a Kafka call stuck past
its timeout or a stop that outlasted HELLO_CONSUMER_SHUTDOWN_GRACE_SECONDS
(the current batch is then read again after a restart), 2 bad configuration."""

logger = logging.getLogger("hello_consumer")


def run() -> int:
    try:
        settings = load_settings(ConsumerSettings)
        logs.configure(settings.log.level, settings.log.format)
        telemetry.configure(settings.telemetry, default_service_name=PROG)
        return _consume(settings)
    except ConfigError as exc:
        fail(PROG, exc)


def _consume(settings: ConsumerSettings) -> int:
    loop = ConsumerLoop(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info(
            "signal received, finishing current batch",
            extra={"signal": signal.Signals(signum).name},
        )
        loop.stopping.set()

    probe = None
    if settings.http_port:
        # Bound before joining the group, so a port in use stops us cleanly.
        try:
            probe = ProbeServer(
                host=settings.http_host,
                port=settings.http_port,
                live=loop.live,
                ready=loop.readiness,
            )
        except OSError as exc:
            address = f"{settings.http_host}:{settings.http_port}"
            raise listen_failure(address, f"{ENV_PREFIX}HTTP_PORT", exc) from exc
        probe.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    failure: list[Exception] = []

    def run_loop() -> None:
        try:
            loop.run()
        except Exception as exc:  # noqa: BLE001 - re-raised in the main thread below
            failure.append(exc)

    worker = threading.Thread(target=run_loop, name="consumer-loop", daemon=True)
    worker.start()
    reason = watch(loop, worker, shutdown_grace_seconds=settings.shutdown_grace_seconds)
    if reason is not None:
        logger.error(
            "consumer loop stuck; exiting 1 without committing the current batch, "
            "which will be read again",
            extra={"reason": reason},
        )
        _exit_now(1)
    try:
        if failure:
            raise failure[0]
    except FatalConsumerError as exc:
        logger.error("consumer stopping on fatal error; exit 1", extra={"reason": str(exc)})
        return 1
    except Exception as exc:
        error = invalid_config(exc, env_prefix=ENV_PREFIX)
        if error is not None:
            raise error from exc
        logger.exception("consumer crashed; exit 1")
        return 1
    finally:
        if probe is not None:
            probe.stop()
    return 0


def _exit_now(code: int) -> NoReturn:
    """Exit at once: a normal shutdown destroys the Kafka clients the stuck
    thread is inside of, and that can block too."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


main = service_command(prog_name=PROG, summary=SUMMARY, settings_cls=ConsumerSettings, run=run)


if __name__ == "__main__":
    main(prog_name=PROG)
