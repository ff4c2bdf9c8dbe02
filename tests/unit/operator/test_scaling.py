"""The scaling decision, rule by rule, with exact numbers."""

from __future__ import annotations

import datetime
from dataclasses import replace

import pytest

from hello_operator.scaling import (
    DecisionState,
    PartitionMemory,
    PartitionOffsets,
    ScalingPolicy,
    decide,
)

NOW = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.UTC).timestamp()
INVALID = -1001  # librdkafka's OFFSET_INVALID: the group has no committed offset
POLICY = ScalingPolicy(
    min_replicas=0,
    max_replicas=10,
    lag_threshold=1000,
    scale_down_stabilization_seconds=0,
    allow_idle_consumers=True,
)


def offsets(*triples: tuple[int | None, int | None, int | None]) -> list[PartitionOffsets]:
    """(committed, log start, log end) per partition, numbered from 0."""
    return [PartitionOffsets(i, c, s, e) for i, (c, s, e) in enumerate(triples)]


def lag_of(*triples: tuple[int | None, int | None, int | None], **policy: object) -> list[int]:
    decision = decide(
        offsets(*triples), replace(POLICY, **policy), DecisionState(), current_replicas=1, now=NOW
    )
    return [p.lag for p in decision.partitions]


# -- lag per partition --------------------------------------------------------------------


def test_lag_is_log_end_minus_committed() -> None:
    assert lag_of((400, 0, 1000), (0, 0, 250)) == [600, 250]


def test_committed_below_log_start_counts_from_log_start() -> None:
    # Offsets 0..699 were deleted by retention: only 700..999 can still be read.
    assert lag_of((100, 700, 1000)) == [300]


def test_no_committed_offset_under_earliest_counts_retained_messages_only() -> None:
    assert lag_of((INVALID, 700, 1000), offset_reset_policy="earliest") == [300]


def test_no_committed_offset_under_latest_is_zero_lag() -> None:
    assert lag_of((INVALID, 700, 1000), offset_reset_policy="latest") == [0]


@pytest.mark.parametrize("marker", [-1, -2, -1000, -1001, None])
def test_negative_committed_markers_mean_no_committed_offset(marker: int | None) -> None:
    assert lag_of((marker, 10, 50), offset_reset_policy="earliest") == [40]
    assert lag_of((marker, 10, 50), offset_reset_policy="latest") == [0]


def test_committed_past_a_stale_log_end_is_zero_not_negative() -> None:
    decision = decide(
        offsets((1500, 0, 1000), (0, 0, 300)), POLICY, DecisionState(), current_replicas=1, now=NOW
    )
    assert [p.lag for p in decision.partitions] == [0, 300]
    assert decision.total_lag == 300


def test_log_start_above_log_end_reads_as_nothing_readable() -> None:
    assert lag_of((INVALID, 1200, 1000), offset_reset_policy="earliest") == [0]


def test_unknown_watermarks_count_zero_and_hold_scale_down() -> None:
    decision = decide(
        offsets((0, 0, 3000), (5, -1, -1), (7, None, 90)),
        POLICY,
        DecisionState(),
        current_replicas=5,
        now=NOW,
    )
    assert [p.lag for p in decision.partitions] == [3000, 0, 0]
    assert decision.total_lag == 3000
    assert decision.raw_replicas == 3
    assert decision.desired_replicas == 5
    assert "offsets unknown for partitions [1, 2], counted as 0" in decision.steps
    assert "scale-down held: offsets unknown" in decision.steps


def test_unknown_watermarks_do_not_block_scale_up() -> None:
    decision = decide(
        offsets((0, 0, 3000), (5, -1, -1)), POLICY, DecisionState(), current_replicas=1, now=NOW
    )
    assert decision.desired_replicas == 3


# -- replicas from lag --------------------------------------------------------------------


def test_desired_is_lag_over_threshold_rounded_up() -> None:
    decision = decide(
        offsets((0, 0, 2000), (0, 0, 2000), (0, 0, 1300)),
        POLICY,
        DecisionState(),
        current_replicas=1,
        now=NOW,
    )
    assert decision.total_lag == 5300
    assert decision.raw_replicas == 6
    assert decision.desired_replicas == 6
    assert decision.steps[0] == "lag 5300 / threshold 1000 → 6"
    assert decision.steps[-1] == "replicas 1 → 6"


def test_desired_is_capped_at_partition_count_unless_idle_consumers_allowed() -> None:
    four = offsets((0, 0, 2000), (0, 0, 2000), (0, 0, 1000), (0, 0, 300))
    capped = decide(
        four,
        replace(POLICY, allow_idle_consumers=False),
        DecisionState(),
        current_replicas=1,
        now=NOW,
    )
    assert capped.raw_replicas == 6
    assert capped.desired_replicas == 4
    assert capped.explanation == (
        "lag 5300 / threshold 1000 → 6; capped at 4 partitions; replicas 1 → 4"
    )
    idle = decide(four, POLICY, DecisionState(), current_replicas=1, now=NOW)
    assert idle.desired_replicas == 6


def test_limit_to_partitions_with_lag_caps_at_partitions_having_lag() -> None:
    decision = decide(
        offsets((0, 0, 5000), (0, 0, 300), (10, 0, 10), (20, 0, 20)),
        replace(POLICY, allow_idle_consumers=False, limit_to_partitions_with_lag=True),
        DecisionState(),
        current_replicas=1,
        now=NOW,
    )
    assert decision.raw_replicas == 6
    assert decision.desired_replicas == 2
    assert "capped at 2 partitions with lag" in decision.steps


def test_desired_is_clamped_to_max_replicas() -> None:
    decision = decide(
        offsets((0, 0, 9000)),
        replace(POLICY, max_replicas=4),
        DecisionState(),
        current_replicas=1,
        now=NOW,
    )
    assert decision.raw_replicas == 9
    assert decision.desired_replicas == 4
    assert "capped at maxReplicas 4" in decision.steps


def test_desired_is_raised_to_min_replicas() -> None:
    decision = decide(
        offsets((100, 0, 100)),
        replace(POLICY, min_replicas=2),
        DecisionState(),
        current_replicas=2,
        now=NOW,
    )
    assert decision.raw_replicas == 0
    assert decision.desired_replicas == 2
    assert "raised to minReplicas 2" in decision.steps


def test_total_lag_is_never_negative() -> None:
    decision = decide(
        offsets((900, 0, 100), (INVALID, -1, -1), (5, 10, 3)),
        POLICY,
        DecisionState(),
        current_replicas=0,
        now=NOW,
    )
    assert decision.total_lag == 0
    assert all(p.lag >= 0 for p in decision.partitions)
    assert decision.desired_replicas == 0


# -- activation from zero -----------------------------------------------------------------


def test_stays_at_zero_while_lag_equals_activation_threshold() -> None:
    decision = decide(
        offsets((0, 0, 50)),
        replace(POLICY, activation_lag_threshold=50),
        DecisionState(),
        current_replicas=0,
        now=NOW,
    )
    assert decision.raw_replicas == 1
    assert decision.desired_replicas == 0
    assert "lag 50 ≤ activation 50: stays at 0" in decision.steps


def test_wakes_from_zero_when_lag_exceeds_activation_threshold() -> None:
    decision = decide(
        offsets((0, 0, 51)),
        replace(POLICY, activation_lag_threshold=50),
        DecisionState(),
        current_replicas=0,
        now=NOW,
    )
    assert decision.desired_replicas == 1


def test_activation_threshold_does_not_stop_a_running_pipeline_draining() -> None:
    decision = decide(
        offsets((0, 0, 30)),
        replace(POLICY, activation_lag_threshold=50),
        DecisionState(),
        current_replicas=1,
        now=NOW,
    )
    assert decision.desired_replicas == 1


def test_default_activation_wakes_on_a_single_message() -> None:
    decision = decide(offsets((0, 0, 1)), POLICY, DecisionState(), current_replicas=0, now=NOW)
    assert decision.desired_replicas == 1


# -- invalid offsets ----------------------------------------------------------------------


def test_keeps_one_replica_under_latest_until_offsets_are_committed() -> None:
    decision = decide(
        offsets((INVALID, 0, 500), (40, 0, 40)),
        replace(POLICY, offset_reset_policy="latest"),
        DecisionState(),
        current_replicas=0,
        now=NOW,
    )
    assert decision.total_lag == 0
    assert decision.desired_replicas == 1
    assert (
        "kept 1 replica: partitions [0] have no committed offset under offsetResetPolicy latest"
        in decision.steps
    )


def test_scales_to_zero_on_invalid_offset_when_asked() -> None:
    decision = decide(
        offsets((INVALID, 0, 500)),
        replace(POLICY, offset_reset_policy="latest", scale_to_zero_on_invalid_offset=True),
        DecisionState(),
        current_replicas=1,
        now=NOW,
    )
    assert decision.desired_replicas == 0


def test_uncommitted_partitions_under_earliest_wake_the_pipeline_on_retained_messages() -> None:
    decision = decide(
        offsets((INVALID, 0, 500)),
        replace(POLICY, offset_reset_policy="earliest"),
        DecisionState(),
        current_replicas=0,
        now=NOW,
    )
    # Under earliest the retained messages are lag, so the pipeline wakes on them.
    assert decision.total_lag == 500
    assert decision.desired_replicas == 1


# -- persistent lag -----------------------------------------------------------------------


def test_persistent_lag_is_excluded_once_the_offset_stays_unmoved_for_the_grace() -> None:
    policy = replace(POLICY, exclude_persistent_lag=True, persistent_lag_grace_seconds=60)
    first = decide(
        offsets((100, 0, 2100), (0, 0, 1500)), policy, DecisionState(), current_replicas=2, now=NOW
    )
    assert first.total_lag == 3500
    waiting = decide(
        offsets((100, 0, 2300), (900, 0, 1600)),
        policy,
        first.state,
        current_replicas=2,
        now=NOW + 30,
    )
    assert [p.counted for p in waiting.partitions] == [True, True]
    assert waiting.total_lag == 2900
    assert waiting.partitions[0].note == "committed offset unmoved for 30 s of 60 s grace"
    excluded = decide(
        offsets((100, 0, 2400), (1500, 0, 1700)),
        policy,
        waiting.state,
        current_replicas=2,
        now=NOW + 60,
    )
    assert [p.lag for p in excluded.partitions] == [2300, 200]
    assert [p.counted for p in excluded.partitions] == [False, True]
    assert excluded.partitions[0].note == (
        "persistent: committed offset unmoved for 60 s at 2 replicas"
    )
    assert excluded.total_lag == 200
    assert excluded.desired_replicas == 1
    assert "excluded persistent lag 2300 on partitions [0]" in excluded.steps
    assert excluded.state.partitions[0] == PartitionMemory(
        100, 2400, persistent=True, since=NOW, replicas=2
    )


def test_persistent_lag_is_counted_when_the_option_is_off() -> None:
    first = decide(offsets((100, 0, 2100)), POLICY, DecisionState(), current_replicas=2, now=NOW)
    second = decide(
        offsets((100, 0, 2100)), POLICY, first.state, current_replicas=2, now=NOW + 3600
    )
    assert second.total_lag == 2000
    assert second.partitions[0].note == ""


def test_persistent_lag_covers_partitions_without_committed_offset() -> None:
    policy = replace(POLICY, exclude_persistent_lag=True, offset_reset_policy="earliest")
    first = decide(offsets((INVALID, 0, 800)), policy, DecisionState(), current_replicas=1, now=NOW)
    second = decide(
        offsets((INVALID, 0, 800)), policy, first.state, current_replicas=1, now=NOW + 60
    )
    assert second.total_lag == 0
    assert second.partitions[0].note == (
        "no committed offset: counted from log start;"
        " persistent: committed offset unmoved for 60 s at 1 replica"
    )


def test_slow_starting_consumers_after_a_scale_up_do_not_scale_the_pipeline_to_zero() -> None:
    # Woken from zero; the new pods need 80 s to start, join and commit,
    # longer than two polling intervals of 30 s.
    policy = replace(
        POLICY,
        exclude_persistent_lag=True,
        persistent_lag_grace_seconds=60,
        allow_idle_consumers=False,
    )
    backlog = offsets((INVALID, 0, 2500), (INVALID, 0, 1500))
    woken = decide(backlog, policy, DecisionState(), current_replicas=0, now=NOW)
    assert (woken.total_lag, woken.desired_replicas) == (4000, 2)
    starting = decide(backlog, policy, woken.state, current_replicas=2, now=NOW + 30)
    assert (starting.total_lag, starting.desired_replicas) == (4000, 2)
    assert [p.counted for p in starting.partitions] == [True, True]
    still_starting = decide(backlog, policy, starting.state, current_replicas=2, now=NOW + 60)
    assert (still_starting.total_lag, still_starting.desired_replicas) == (4000, 2)
    assert still_starting.partitions[1].note == (
        "no committed offset: counted from log start; committed offset unmoved for 30 s of 60 s"
        " grace"
    )
    consuming = decide(
        offsets((1000, 0, 2500), (300, 0, 1500)),
        policy,
        still_starting.state,
        current_replicas=2,
        now=NOW + 90,
    )
    assert (consuming.total_lag, consuming.desired_replicas) == (2700, 2)
    assert [p.counted for p in consuming.partitions] == [True, True]


def test_a_replica_change_restarts_the_grace() -> None:
    policy = replace(POLICY, exclude_persistent_lag=True, persistent_lag_grace_seconds=60)
    stuck = offsets((100, 0, 1100))
    state = decide(stuck, policy, DecisionState(), current_replicas=2, now=NOW).state
    state = decide(stuck, policy, state, current_replicas=2, now=NOW + 40).state
    assert state.partitions[0].since == NOW
    # Scaled 2 → 3 before this poll: the consumers rebalance, the clock starts again.
    rescaled = decide(stuck, policy, state, current_replicas=3, now=NOW + 70)
    assert rescaled.total_lag == 1000
    assert rescaled.state.partitions[0] == PartitionMemory(
        100, 1100, persistent=False, since=NOW + 70, replicas=3
    )
    waiting = decide(stuck, policy, rescaled.state, current_replicas=3, now=NOW + 120)
    assert waiting.total_lag == 1000
    assert waiting.partitions[0].note == "committed offset unmoved for 50 s of 60 s grace"
    excluded = decide(stuck, policy, waiting.state, current_replicas=3, now=NOW + 130)
    assert excluded.total_lag == 0
    assert excluded.partitions[0].counted is False


def test_zero_replicas_stop_the_grace_clock() -> None:
    policy = replace(POLICY, exclude_persistent_lag=True, persistent_lag_grace_seconds=60)
    stuck = offsets((100, 0, 1100))
    state = decide(stuck, policy, DecisionState(), current_replicas=1, now=NOW).state
    asleep = decide(stuck, policy, state, current_replicas=0, now=NOW + 30)
    assert asleep.state.partitions[0].since is None
    # Woken at NOW + 100: the 100 s since the first poll do not count.
    awake = decide(stuck, policy, asleep.state, current_replicas=1, now=NOW + 100)
    awake = decide(stuck, policy, awake.state, current_replicas=1, now=NOW + 130)
    assert awake.total_lag == 1000
    assert awake.partitions[0].note == "committed offset unmoved for 30 s of 60 s grace"


def test_a_partition_that_drains_to_zero_lag_starts_a_new_grace_on_its_next_message() -> None:
    policy = replace(POLICY, exclude_persistent_lag=True, persistent_lag_grace_seconds=60)
    state = decide(offsets((500, 0, 500)), policy, DecisionState(), current_replicas=1, now=NOW)
    # Idle for 10 minutes, then one message arrives: the consumer gets its grace.
    fresh = decide(offsets((500, 0, 501)), policy, state.state, current_replicas=1, now=NOW + 600)
    later = decide(offsets((500, 0, 501)), policy, fresh.state, current_replicas=1, now=NOW + 630)
    assert later.total_lag == 1
    assert later.partitions[0].counted is True


def test_fresh_lag_at_zero_replicas_is_never_treated_as_persistent() -> None:
    # Nobody consumes at zero replicas, so the offset cannot move; the lag is real.
    policy = replace(POLICY, exclude_persistent_lag=True)
    first = decide(offsets((100, 0, 100)), policy, DecisionState(), current_replicas=0, now=NOW)
    second = decide(offsets((100, 0, 600)), policy, first.state, current_replicas=0, now=NOW + 1)
    assert second.total_lag == 500
    assert second.desired_replicas == 1


def test_stuck_offset_does_not_wake_a_pipeline_it_already_put_to_sleep() -> None:
    # A transaction marker leaves lag 1 that no consumer can commit past.
    policy = replace(POLICY, exclude_persistent_lag=True)
    state = DecisionState(partitions={0: PartitionMemory(99, 100, persistent=True)})
    asleep = decide(offsets((99, 0, 100)), policy, state, current_replicas=0, now=NOW)
    assert asleep.total_lag == 0
    assert asleep.desired_replicas == 0
    woken = decide(offsets((99, 0, 101)), policy, asleep.state, current_replicas=0, now=NOW + 1)
    assert woken.total_lag == 2
    assert woken.desired_replicas == 1


def test_a_stuck_partition_is_excluded_scaled_to_zero_and_woken_only_by_new_messages() -> None:
    policy = replace(POLICY, exclude_persistent_lag=True, persistent_lag_grace_seconds=60)
    stuck = offsets((99, 0, 100))
    state = decide(stuck, policy, DecisionState(), current_replicas=1, now=NOW).state
    excluded = decide(stuck, policy, state, current_replicas=1, now=NOW + 60)
    assert (excluded.total_lag, excluded.desired_replicas) == (0, 0)
    asleep = decide(stuck, policy, excluded.state, current_replicas=0, now=NOW + 90)
    assert (asleep.total_lag, asleep.desired_replicas) == (0, 0)
    assert asleep.partitions[0].note == "persistent: committed offset unmoved since it was excluded"
    woken = decide(offsets((99, 0, 105)), policy, asleep.state, current_replicas=0, now=NOW + 120)
    assert (woken.total_lag, woken.desired_replicas) == (6, 1)
    # Awake, the partition is counted again until the consumer has had its grace.
    awake = decide(offsets((99, 0, 105)), policy, woken.state, current_replicas=1, now=NOW + 150)
    assert (awake.total_lag, awake.desired_replicas) == (6, 1)


# -- stabilization window and steps -------------------------------------------------------


def test_scale_down_is_held_until_the_window_passes() -> None:
    policy = replace(POLICY, scale_down_stabilization_seconds=60)
    busy = decide(offsets((0, 0, 6000)), policy, DecisionState(), current_replicas=1, now=NOW)
    assert busy.desired_replicas == 6

    quiet = decide(offsets((6000, 0, 6000)), policy, busy.state, current_replicas=6, now=NOW + 10)
    assert quiet.recommended_replicas == 0
    assert quiet.desired_replicas == 6
    assert "scale-down held by window until 12:01:00" in quiet.steps

    later = decide(offsets((6000, 0, 6000)), policy, quiet.state, current_replicas=6, now=NOW + 60)
    assert later.desired_replicas == 0


def test_scale_down_goes_only_as_low_as_the_window_maximum() -> None:
    policy = replace(POLICY, scale_down_stabilization_seconds=60)
    state = DecisionState(recommendations=((NOW - 50, 6), (NOW - 20, 3)))
    decision = decide(offsets((0, 0, 1000)), policy, state, current_replicas=6, now=NOW)
    assert decision.desired_replicas == 6
    decision = decide(offsets((0, 0, 1000)), policy, state, current_replicas=6, now=NOW + 15)
    assert decision.desired_replicas == 3
    assert "scale-down limited to 3 by window until 12:00:40" in decision.steps


def test_oscillating_lag_does_not_flap() -> None:
    policy = replace(POLICY, scale_down_stabilization_seconds=120)
    state, replicas, history = DecisionState(), 1, []
    for second in range(0, 100, 10):
        lag = 4000 if (second // 10) % 2 == 0 else 0
        decision = decide(
            offsets((0, 0, lag) if lag else (7, 0, 7)),
            policy,
            state,
            current_replicas=replicas,
            now=NOW + second,
        )
        state, replicas = decision.state, decision.desired_replicas
        history.append(replicas)
    assert history == [4] * 10


def test_scale_up_is_not_delayed_by_the_window() -> None:
    policy = replace(POLICY, scale_down_stabilization_seconds=600)
    state = DecisionState(recommendations=((NOW - 5, 2),))
    decision = decide(offsets((0, 0, 5000)), policy, state, current_replicas=2, now=NOW)
    assert decision.desired_replicas == 5


def test_window_state_is_bounded_by_distinct_recommendations() -> None:
    policy = replace(POLICY, scale_down_stabilization_seconds=3600)
    state = DecisionState()
    for second, lag in enumerate([5000, 4000, 4000, 3000, 6000, 1000, 1000, 2000]):
        state = decide(
            offsets((0, 0, lag)), policy, state, current_replicas=6, now=NOW + second
        ).state
    assert [r for _, r in state.recommendations] == [6, 2]


def test_scale_up_step_limits_the_increase_per_poll() -> None:
    decision = decide(
        offsets((0, 0, 9000)),
        replace(POLICY, scale_up_step=2),
        DecisionState(),
        current_replicas=1,
        now=NOW,
    )
    assert decision.desired_replicas == 3
    assert "scale-up limited to +2 per poll" in decision.steps


def test_scale_down_step_limits_the_decrease_per_poll() -> None:
    decision = decide(
        offsets((9000, 0, 9000)),
        replace(POLICY, scale_down_step=3),
        DecisionState(),
        current_replicas=8,
        now=NOW,
    )
    assert decision.desired_replicas == 5
    assert "scale-down limited to -3 per poll" in decision.steps


def test_lowered_max_replicas_applies_at_once_despite_window_and_steps() -> None:
    policy = replace(POLICY, max_replicas=2, scale_down_step=1, scale_down_stabilization_seconds=60)
    state = DecisionState(recommendations=((NOW - 5, 8),))
    decision = decide(offsets((0, 0, 9000)), policy, state, current_replicas=8, now=NOW)
    assert decision.desired_replicas == 2
    assert "replica bounds apply at once: 2" in decision.steps


def test_the_example_explanation_from_the_issue() -> None:
    policy = replace(POLICY, allow_idle_consumers=False, scale_down_stabilization_seconds=300)
    state = DecisionState(recommendations=((NOW - 60 + 10, 8),))
    decision = decide(
        offsets((0, 0, 2000), (0, 0, 2000), (0, 0, 1000), (0, 0, 300)),
        policy,
        state,
        current_replicas=8,
        now=NOW,
    )
    assert decision.explanation == (
        "lag 5300 / threshold 1000 → 6; capped at 4 partitions;"
        " scale-down held by window until 12:04:10; replicas stay at 8"
    )


# -- state round trip ---------------------------------------------------------------------


def test_state_survives_a_round_trip_through_the_status() -> None:
    policy = replace(POLICY, exclude_persistent_lag=True, scale_down_stabilization_seconds=300)
    decision = decide(
        offsets((5, 0, 4000), (INVALID, 0, 10)),
        policy,
        DecisionState(),
        current_replicas=1,
        now=NOW,
    )
    assert decision.state.to_status()["partitions"] == [
        {
            "partition": 0,
            "committed": 5,
            "logEnd": 4000,
            "persistent": False,
            "replicas": 1,
            "since": "2025-01-01T12:00:00+00:00",
        },
        {
            "partition": 1,
            "committed": None,
            "logEnd": 10,
            "persistent": False,
            "replicas": 1,
            "since": "2025-01-01T12:00:00+00:00",
        },
    ]
    restored = DecisionState.from_status(decision.state.to_status())
    assert restored == decision.state


def test_state_written_before_the_grace_clock_is_read_and_its_exclusions_rechecked() -> None:
    # The previous version wrote no replicas or since, and may have excluded
    # partitions of a backlog whose consumers were only starting.
    restored = DecisionState.from_status(
        {"partitions": [{"partition": 0, "committed": None, "logEnd": 4000, "persistent": True}]}
    )
    assert restored.partitions == {0: PartitionMemory(None, 4000, persistent=False)}
    policy = replace(POLICY, exclude_persistent_lag=True)
    decision = decide(offsets((INVALID, 0, 4000)), policy, restored, current_replicas=0, now=NOW)
    assert (decision.total_lag, decision.desired_replicas) == (4000, 4)


def test_state_from_a_damaged_status_drops_only_the_bad_entries() -> None:
    restored = DecisionState.from_status(
        {
            "recommendations": [
                {"time": "yesterday", "replicas": 3},
                {"time": _iso(NOW), "replicas": 2},
            ],
            "partitions": [{"partition": "x"}, {"partition": 1, "committed": 7, "logEnd": 9}],
        }
    )
    assert restored.recommendations == ((NOW, 2),)
    assert restored.partitions == {1: PartitionMemory(7, 9, persistent=False)}


def _iso(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat()
