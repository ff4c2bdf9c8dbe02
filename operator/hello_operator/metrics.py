"""Prometheus metrics of hello-operator's decisions (served on /metrics).

Labels are the pipeline's namespace and name; partition-level lag is in
the CR status rather than here, to keep series counts bounded.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

from hello_operator.scaling import Decision

LABELS = ("namespace", "pipeline")

total_lag = Gauge(
    "hello_operator_lag_messages",
    "Consumer-group lag counted for scaling at the last poll.",
    LABELS,
)
desired_replicas = Gauge(
    "hello_operator_desired_replicas", "Replicas the last decision asked for.", LABELS
)
current_replicas = Gauge(
    "hello_operator_current_replicas", "Deployment replicas seen at the last poll.", LABELS
)
scale_events = Counter(
    "hello_operator_scale_events_total",
    "Replica changes patched onto consumer Deployments.",
    (*LABELS, "direction"),
)
held_by_window = Counter(
    "hello_operator_scale_down_held_total",
    "Polls in which the stabilization window held back a scale-down.",
    LABELS,
)
poll_errors = Counter(
    "hello_operator_poll_errors_total",
    "Polls that could not read offsets or patch the Deployment, by cause.",
    (*LABELS, "cause"),
)
poll_seconds = Histogram(
    "hello_operator_poll_seconds",
    "Wall time of one poll: offsets read, decision, scale and status patch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
reconciles = Counter(
    "hello_operator_reconciles_total",
    "Reconciles of owned objects, by outcome.",
    ("outcome",),
)


def record_decision(namespace: str, pipeline: str, decision: Decision, *, scaled: bool) -> None:
    total_lag.labels(namespace, pipeline).set(decision.total_lag)
    desired_replicas.labels(namespace, pipeline).set(decision.desired_replicas)
    current_replicas.labels(namespace, pipeline).set(
        decision.desired_replicas if scaled else decision.current_replicas
    )
    if scaled:
        scale_events.labels(namespace, pipeline, decision.direction).inc()
    if decision.held_until is not None:
        held_by_window.labels(namespace, pipeline).inc()


def forget(namespace: str, pipeline: str) -> None:
    """Drop a deleted pipeline's series."""
    for gauge in (total_lag, desired_replicas, current_replicas):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, pipeline)
