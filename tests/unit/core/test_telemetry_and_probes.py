from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter

from hello_core import telemetry
from hello_core.errors import ConfigError
from hello_core.http import ProbeServer
from hello_core.settings import TelemetrySettings


def test_trace_context_survives_the_trip_through_kafka_headers() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("publish") as span:
        headers = telemetry.inject_headers()
        sent = span.get_span_context()
    assert [k for k, _ in headers] == ["traceparent"]
    context = telemetry.extract_context([("content-type", b"x"), *headers, ("empty", None)])
    received = trace.get_current_span(context).get_span_context()
    assert (received.trace_id, received.span_id) == (sent.trace_id, sent.span_id)


def test_missing_headers_give_an_empty_context() -> None:
    context = telemetry.extract_context(None)
    assert not trace.get_current_span(context).get_span_context().is_valid


def test_otlp_without_its_package_is_a_config_error() -> None:
    pytest.importorskip("opentelemetry.sdk")
    try:
        import opentelemetry.exporter.otlp  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="opentelemetry-exporter-otlp"):
            telemetry.configure(TelemetrySettings(traces_exporter="otlp"), default_service_name="t")
    else:  # pragma: no cover - only where the exporter is installed
        pytest.skip("the OTLP exporter is installed here")


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_probe_server_reports_checks_and_metrics() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_events", "test counter", registry=registry).inc(3)
    ready = {"ok": False}
    server = ProbeServer(
        host="127.0.0.1",
        port=0,
        live=lambda: (True, "ok"),
        ready=lambda: (ready["ok"], "waiting for partitions" if not ready["ok"] else "ok"),
        registry=registry,
    ).start()
    try:
        assert get(server.port, "/livez") == (200, "ok\n")
        assert get(server.port, "/readyz") == (503, "waiting for partitions\n")
        ready["ok"] = True
        assert get(server.port, "/readyz?verbose") == (200, "ok\n")
        status, body = get(server.port, "/metrics")
        assert status == 200 and "probe_test_events_total 3.0" in body
        assert get(server.port, "/nope")[0] == 404
    finally:
        server.stop()
