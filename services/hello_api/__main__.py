"""Entry point: ``hello-api`` (or ``python -m hello_api``)."""

from __future__ import annotations

import asyncio
import logging
import sys

from hello_api.server import ApiServer, serve
from hello_api.settings import ApiSettings
from hello_core import logs, telemetry
from hello_core.errors import ConfigError
from hello_core.http import ProbeServer
from hello_core.settings import load_settings

logger = logging.getLogger("hello_api")


def main() -> None:
    try:
        settings = load_settings(ApiSettings)
    except ConfigError as exc:
        print(f"hello-api: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(settings.log.level, settings.log.format)
    telemetry.configure(settings.telemetry, default_service_name="hello-api")

    probes: list[ProbeServer] = []

    async def on_started(api: ApiServer) -> None:
        if settings.http_port:

            def ready() -> tuple[bool, str]:
                if api.publisher.brokers_down:
                    return False, "kafka brokers unreachable"
                return True, "ok"

            probes.append(ProbeServer(port=settings.http_port, ready=ready).start())

    try:
        code = asyncio.run(serve(settings, on_started=on_started))
    except OSError as exc:
        logger.error("api failed to start reason=%s", exc)
        code = 1
    for probe in probes:
        probe.stop()
    raise SystemExit(code)


if __name__ == "__main__":
    main()
