"""The HelloPipeline status, built from what the operator last observed (pure).

Reconcile and the scale loop both write status; both build it here from the
same per-pipeline :class:`Observation`, so neither overwrites the other's
conditions with stale ones.

Conditions:

- ``KafkaReachable``: the last offset poll got an answer from Kafka.
- ``Scaling``: True while the last decision changed replicas; otherwise the
  reason says why not (Stable, HeldByWindow, Paused, KafkaUnreachable).
- ``Degraded``: something needs a person (owned objects failed to apply,
  the topic is missing, offsets of some partitions are unreadable).
- ``Ready``: owned objects applied, Kafka reachable, not degraded.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hello_operator.scaling import Decision, PartitionOffsets

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass
class Observation:
    """What the operator knows about one pipeline; kept in kopf's per-object memo."""

    generation: int | None = None
    reconciled_generation: int | None = None
    reconcile_error: str | None = None
    kafka_error: str | None = None
    lag_error: str | None = None
    polled: bool = False
    paused: bool = False
    decision: Decision | None = None
    offsets: Sequence[PartitionOffsets] = ()
    replicas: int | None = None
    last_scale_time: float | None = None
    last_poll_time: float | None = None
    scaled: bool = False


@dataclass(frozen=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str


def iso(stamp: float) -> str:
    return (
        datetime.datetime.fromtimestamp(stamp, datetime.UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z")
    )


def evaluate(obs: Observation) -> list[Condition]:
    if obs.kafka_error:
        kafka = Condition("KafkaReachable", "False", "KafkaUnreachable", obs.kafka_error)
    elif obs.polled:
        kafka = Condition("KafkaReachable", "True", "OffsetsRead", "the last poll read offsets")
    else:
        kafka = Condition("KafkaReachable", "Unknown", "NotPolledYet", "no poll has run yet")

    decision = obs.decision
    if obs.paused:
        scaling = Condition("Scaling", "False", "Paused", "spec.paused is true")
    elif obs.kafka_error:
        scaling = Condition(
            "Scaling", "False", "KafkaUnreachable", "replicas kept as they are until Kafka answers"
        )
    elif decision is None:
        scaling = Condition("Scaling", "Unknown", "NotPolledYet", "no decision yet")
    elif obs.scaled:
        reason = "ScaledUp" if decision.direction == "up" else "ScaledDown"
        scaling = Condition("Scaling", "True", reason, decision.explanation)
    elif decision.held_until is not None:
        scaling = Condition("Scaling", "False", "HeldByWindow", decision.explanation)
    else:
        scaling = Condition("Scaling", "False", "Stable", decision.explanation)

    unknown = [p.partition for p in (decision.partitions if decision else ()) if p.unknown]
    if obs.reconcile_error:
        degraded = Condition("Degraded", "True", "ReconcileFailed", obs.reconcile_error)
    elif obs.lag_error:
        degraded = Condition("Degraded", "True", "LagUnreadable", obs.lag_error)
    elif unknown:
        degraded = Condition(
            "Degraded", "True", "OffsetsUnknown", f"offsets unreadable for partitions {unknown}"
        )
    else:
        degraded = Condition("Degraded", "False", "AsExpected", "nothing needs attention")

    if obs.reconcile_error:
        ready = Condition("Ready", "False", "ReconcileFailed", obs.reconcile_error)
    elif obs.reconciled_generation is None:
        ready = Condition("Ready", "False", "Reconciling", "owned objects not applied yet")
    elif kafka.status != "True" and not obs.paused:
        ready = Condition("Ready", "False", kafka.reason, kafka.message)
    elif degraded.status == "True":
        ready = Condition("Ready", "False", degraded.reason, degraded.message)
    else:
        ready = Condition("Ready", "True", "Reconciled", "owned objects applied and lag read")
    return [ready, kafka, scaling, degraded]


def merge_conditions(
    previous: Sequence[Mapping[str, Any]] | None,
    current: Sequence[Condition],
    *,
    now: float,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Conditions for the status; lastTransitionTime moves only when status flips."""
    before = {c.get("type"): c for c in previous or ()}
    merged = []
    for cond in current:
        old = before.get(cond.type)
        changed = old is None or old.get("status") != cond.status
        item: dict[str, Any] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message,
            "lastTransitionTime": iso(now) if changed else old.get("lastTransitionTime", iso(now)),  # type: ignore[union-attr]
        }
        if generation is not None:
            item["observedGeneration"] = generation
        merged.append(item)
    return merged


def build(
    obs: Observation,
    *,
    previous_conditions: Sequence[Mapping[str, Any]] | None,
    selector: str,
    now: float,
) -> dict[str, Any]:
    """The status document to merge-patch onto the HelloPipeline."""
    status: dict[str, Any] = {
        "selector": selector,
        "conditions": merge_conditions(
            previous_conditions, evaluate(obs), now=now, generation=obs.generation
        ),
    }
    if obs.reconciled_generation is not None:
        status["observedGeneration"] = obs.reconciled_generation
    if obs.replicas is not None:
        status["replicas"] = obs.replicas
    if obs.last_poll_time is not None:
        status["lastPollTime"] = iso(obs.last_poll_time)
    if obs.last_scale_time is not None:
        status["lastScaleTime"] = iso(obs.last_scale_time)
    decision = obs.decision
    if decision is not None:
        raw = {o.partition: o for o in obs.offsets}
        status["totalLag"] = decision.total_lag
        status["desiredReplicas"] = decision.desired_replicas
        status["lastDecision"] = decision.explanation
        status["decisionState"] = decision.state.to_status()
        status["partitionLag"] = [
            {
                "partition": p.partition,
                "lag": p.lag,
                "counted": p.counted,
                "committed": _offset(raw.get(p.partition), "committed"),
                "logStart": _offset(raw.get(p.partition), "log_start"),
                "logEnd": _offset(raw.get(p.partition), "log_end"),
                "note": p.note,
            }
            for p in decision.partitions
        ]
    return status


def _offset(item: PartitionOffsets | None, attr: str) -> int | None:
    value = getattr(item, attr) if item is not None else None
    return value if isinstance(value, int) and value >= 0 else None
