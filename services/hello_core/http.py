"""A small HTTP endpoint for /metrics (Prometheus), /livez and /readyz.

Runs in a daemon thread so it answers even while the service's own loop is
busy; probes therefore report what the callables say, not whether the loop
is responsive (the consumer's liveness callable checks its loop heartbeat).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from hello_core.errors import ConfigError

logger = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]


def _always_ok() -> tuple[bool, str]:
    return True, "ok"


class ProbeServer:
    def __init__(
        self,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - probes must be reachable by the kubelet
        port: int,
        live: Check = _always_ok,
        ready: Check = _always_ok,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        checks = {"/livez": live, "/readyz": ready}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path in checks:
                    ok, reason = checks[path]()
                    self._send(200 if ok else 503, reason.encode() + b"\n", "text/plain")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                logger.debug("probe request", extra={"request": format % args})

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="probe-http", daemon=True
        )

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ProbeServer:
        self._thread.start()
        logger.info(
            "probe endpoint listening",
            extra={"address": f"{self.host}:{self.port}", "paths": "/metrics,/livez,/readyz"},
        )
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def listen_failure(address: str, variable: str, exc: OSError) -> ConfigError:
    """The one-line error for an address we cannot bind, naming the variable that set it."""
    return ConfigError(f"cannot listen on {address} ({variable}): {exc.strerror or exc}")
