"""OpenTelemetry tracing set-up and trace-context propagation through Kafka headers."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from hello_core.errors import ConfigError
from hello_core.settings import TelemetrySettings

logger = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes | str | None]]


def configure(settings: TelemetrySettings, *, default_service_name: str) -> TracerProvider | None:
    """Install a tracer provider, or none with exporter "none".

    Without a provider, OpenTelemetry's no-op tracer makes spans free, and no
    trace context is added to Kafka headers.
    """
    if settings.traces_exporter == "none":
        return None
    resource = Resource.create({SERVICE_NAME: settings.service_name or default_service_name})
    provider = TracerProvider(resource=resource)
    if settings.traces_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif settings.traces_exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError as exc:
            raise ConfigError(
                "traces exporter 'otlp' needs the opentelemetry-exporter-otlp package"
            ) from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def inject_headers() -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers (W3C traceparent)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def extract_context(headers: Iterable[tuple[str, bytes | str | None]] | None) -> Context:
    carrier = {}
    for key, value in headers or ():
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value is not None:
            carrier[key] = value
    return propagate.extract(carrier)
