"""Entry point: ``hello-consumer`` (or ``python -m hello_consumer``)."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from hello_consumer.loop import ConsumerLoop, FatalConsumerError
from hello_consumer.settings import ConsumerSettings
from hello_core import logs, telemetry
from hello_core.errors import ConfigError
from hello_core.http import ProbeServer
from hello_core.settings import load_settings

logger = logging.getLogger("hello_consumer")


def main() -> None:
    try:
        settings = load_settings(ConsumerSettings)
    except ConfigError as exc:
        print(f"hello-consumer: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(settings.log.level, settings.log.format)
    telemetry.configure(settings.telemetry, default_service_name="hello-consumer")

    loop = ConsumerLoop(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info(
            "signal received, finishing current batch signal=%s", signal.Signals(signum).name
        )
        loop.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    probe = None
    if settings.http_port:
        probe = ProbeServer(port=settings.http_port, live=loop.live, ready=loop.readiness).start()
    code = 0
    try:
        loop.run()
    except FatalConsumerError as exc:
        logger.error("consumer stopping on fatal error reason=%s", exc)
        code = 1
    except Exception:
        logger.exception("consumer crashed")
        code = 1
    finally:
        if probe is not None:
            probe.stop()
    raise SystemExit(code)


if __name__ == "__main__":
    main()
