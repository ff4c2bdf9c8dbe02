"""Entry point: ``hello-api`` (or ``python -m hello_api``)."""

from __future__ import annotations

import asyncio
import logging

from hello_api.server import ApiServer, serve
from hello_api.settings import ENV_PREFIX, ApiSettings
from hello_core import logs, telemetry
from hello_core.cli import fail, service_command
from hello_core.errors import ConfigError
from hello_core.http import ProbeServer, listen_failure
from hello_core.settings import load_settings

PROG = "hello-api"

SUMMARY = """Serve /hello.HelloApi/SayHello over gRPC and publish each call to Kafka.

Each call is answered once the broker has acknowledged the record (acks=all,
idempotent producer). grpc.health.v1 and server reflection are served too,
and /metrics, /livez and /readyz over HTTP. SIGTERM drains in-flight calls
and flushes the producer. Exit codes: 0 clean stop, 1 undelivered records or
a crash, 2 bad configuration."""

logger = logging.getLogger("hello_api")


def run() -> int:
    try:
        settings = load_settings(ApiSettings)
        logs.configure(settings.log.level, settings.log.format)
        telemetry.configure(settings.telemetry, default_service_name=PROG)
        return _serve(settings)
    except ConfigError as exc:
        fail(PROG, exc)


def _serve(settings: ApiSettings) -> int:
    api_ref: list[ApiServer] = []

    def ready() -> tuple[bool, str]:
        if not api_ref:
            return False, "starting"
        return api_ref[0].readiness()

    probe = None
    if settings.http_port:
        # Bound before anything else starts, so a port in use stops us cleanly.
        try:
            probe = ProbeServer(host=settings.http_host, port=settings.http_port, ready=ready)
        except OSError as exc:
            address = f"{settings.http_host}:{settings.http_port}"
            raise listen_failure(address, f"{ENV_PREFIX}HTTP_PORT", exc) from exc
        probe.start()

    async def on_started(api: ApiServer) -> None:
        api_ref.append(api)

    try:
        return asyncio.run(serve(settings, on_started=on_started))
    finally:
        if probe is not None:
            probe.stop()


main = service_command(prog_name=PROG, summary=SUMMARY, settings_cls=ApiSettings, run=run)


if __name__ == "__main__":
    main(prog_name=PROG)
