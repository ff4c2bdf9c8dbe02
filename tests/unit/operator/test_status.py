"""Status and conditions built from what the operator observed."""

from __future__ import annotations

from hello_operator import status
from hello_operator.scaling import DecisionState, PartitionOffsets, ScalingPolicy, decide

NOW = 1_735_732_800.0  # 2025-01-01T12:00:00Z


def conditions(obs: status.Observation) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.evaluate(obs)}


def scaled_observation() -> status.Observation:
    decision = decide(
        [PartitionOffsets(0, 0, 0, 2500)],
        ScalingPolicy(lag_threshold=1000, allow_idle_consumers=True),
        DecisionState(),
        current_replicas=1,
        now=NOW,
    )
    return status.Observation(
        generation=3,
        reconciled_generation=3,
        polled=True,
        decision=decision,
        offsets=[PartitionOffsets(0, 0, 0, 2500)],
        replicas=1,
        scaled=True,
        last_poll_time=NOW,
        last_scale_time=NOW,
    )


def test_a_healthy_scaled_pipeline_is_ready_and_scaling_up() -> None:
    assert conditions(scaled_observation()) == {
        "Ready": ("True", "Reconciled"),
        "KafkaReachable": ("True", "OffsetsRead"),
        "Scaling": ("True", "ScaledUp"),
        "Degraded": ("False", "AsExpected"),
    }


def test_unreachable_kafka_is_not_ready_and_keeps_replicas() -> None:
    obs = scaled_observation()
    obs.kafka_error, obs.scaled = "Kafka did not answer: timed out", False
    found = {c.type: c for c in status.evaluate(obs)}
    assert (found["KafkaReachable"].status, found["KafkaReachable"].message) == (
        "False",
        "Kafka did not answer: timed out",
    )
    assert found["Scaling"].reason == "KafkaUnreachable"
    assert found["Ready"].status == "False"


def test_failed_reconcile_is_degraded_with_the_error() -> None:
    obs = scaled_observation()
    obs.reconcile_error = "apply KafkaTopic shop/t failed: 404 Not Found (is Strimzi installed?)"
    assert conditions(obs)["Degraded"] == ("True", "ReconcileFailed")
    assert conditions(obs)["Ready"] == ("False", "ReconcileFailed")


def test_status_document_carries_lag_decision_and_selector() -> None:
    doc = status.build(scaled_observation(), previous_conditions=None, selector="a=b", now=NOW)
    assert doc["totalLag"] == 2500
    assert doc["desiredReplicas"] == 3
    assert doc["replicas"] == 1
    assert doc["observedGeneration"] == 3
    assert doc["selector"] == "a=b"
    assert doc["lastScaleTime"] == "2025-01-01T12:00:00Z"
    assert doc["lastDecision"] == "lag 2500 / threshold 1000 → 3; replicas 1 → 3"
    assert doc["partitionLag"] == [
        {
            "partition": 0,
            "lag": 2500,
            "counted": True,
            "committed": 0,
            "logStart": 0,
            "logEnd": 2500,
            "note": "",
        }
    ]


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    first = status.build(scaled_observation(), previous_conditions=None, selector="", now=NOW)
    later = scaled_observation()
    later.scaled = False
    second = status.build(later, previous_conditions=first["conditions"], selector="", now=NOW + 60)
    times = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert times["Ready"] == "2025-01-01T12:00:00Z"
    assert times["Scaling"] == "2025-01-01T12:01:00Z"
