"""Entry point ``hello-operator`` (also ``python -m hello_operator``).

Reads ``HELLO_OPERATOR_*`` settings, serves Prometheus metrics, and runs the
kopf operator with peering, so that of several replicas only one acts.
kopf handles SIGTERM/SIGINT: it stops the daemons (each finishes its poll)
and exits.
"""

from __future__ import annotations

import sys

import kopf
import prometheus_client

from hello_core.errors import ConfigError
from hello_core.logs import configure
from hello_core.settings import load_settings
from hello_operator.settings import OperatorSettings


def main() -> None:
    try:
        settings = load_settings(OperatorSettings)
    except ConfigError as exc:
        print(f"hello-operator: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure(settings.log.level, settings.log.format)

    from hello_operator import handlers  # noqa: F401 - registers the kopf handlers

    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.metrics_host)
    liveness = (
        f"http://{settings.metrics_host}:{settings.health_port}/healthz"
        if settings.health_port
        else None
    )
    kopf.run(
        standalone=settings.standalone,
        peering_name=None if settings.standalone else settings.peering_name,
        priority=settings.priority,
        namespaces=settings.namespaces,
        clusterwide=not settings.namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(settings=settings),
    )


if __name__ == "__main__":
    main()
