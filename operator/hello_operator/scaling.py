"""The scaling decision: from Kafka offsets to a replica count, with no I/O.

:func:`decide` is the only place where lag becomes replicas. It takes the
per-partition offsets read in one poll, the pipeline's scaling policy, the
state remembered from the previous poll and the Deployment's current
replicas, and returns per-partition lag, total lag, the desired replicas and
an explanation a person can check ("lag 5300 / threshold 1000 → 6; capped at
4 partitions; scale-down held by window until 12:04:10").

The rules, in the order they are applied:

1. Lag per partition counts only messages this group could still read:
   ``log end - committed``. A committed offset below the log start counts
   from the log start, because history deleted by retention can never be
   consumed. Without a committed offset the lag is ``log end - log start``
   under ``earliest`` and 0 under ``latest``. librdkafka's negative markers
   (-1001 invalid, -1 end, -2 beginning) mean "no committed offset"; a
   committed offset past the log end (a stale watermark) is 0, never
   negative; partitions whose watermarks are unknown count 0 and block
   scale-down for this poll, so missing data neither inflates nor deflates.
2. ``excludePersistentLag`` drops partitions that consumers had the chance
   to move and did not. A partition's grace clock starts at the first poll
   that sees its committed offset (or "no committed offset") with lag while
   the Deployment has replicas. It starts again when that offset moves, when
   the lag reaches 0 or when the replica count changes (new or remaining
   consumers must first join the group and rebalance), and it does not run
   at zero replicas. A partition whose clock has run for
   ``persistentLagGraceSeconds``, over at least two polls, is dropped. A
   partition dropped at the previous poll stays dropped, across a replica
   change too (scaling to zero included), while neither its committed
   offset nor its log end moves: a stuck offset such as a transaction
   marker neither keeps nor wakes consumers, while fresh lag always wakes
   the pipeline and is counted for a full grace period again.
3. ``raw = ceil(total / lagThreshold)``. At zero replicas the pipeline wakes
   only when total lag is strictly greater than ``activationLagThreshold``.
4. The count is capped at the partition count (unless
   ``allowIdleConsumers``) and at the partitions with lag (with
   ``limitToPartitionsWithLag``); under ``latest`` a partition without a
   committed offset keeps one replica (unless
   ``scaleToZeroOnInvalidOffset``), so that the group can establish offsets;
   then it is clamped to ``[minReplicas, maxReplicas]``.
5. Scale-down follows the largest recommendation seen within the
   stabilization window (as the HPA does), so oscillating lag does not flap.
   Scale-up is immediate.
6. Step limits bound the change per poll; the replica bounds win over them.

Where this differs from KEDA's Kafka scaler, on purpose:
retention-deleted history is never lag (kedacore/keda#7936); negative
per-partition lag is clamped before summing; persistent-lag exclusion also
covers partitions without a committed offset (kedacore/keda#5274), and at
zero replicas it neither keeps the pipeline asleep on fresh lag nor wakes it
for a stuck offset such as a transaction marker (kedacore/keda#5675). The
activation threshold only gates waking from zero: a running pipeline drains
all lag before it scales to zero, instead of leaving up to the activation
threshold unread.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

OffsetResetPolicy = Literal["earliest", "latest"]


@dataclass(frozen=True)
class PartitionOffsets:
    """Offsets of one partition as read in one poll.

    Values come straight from the client: ``None`` or a negative number
    means "not known" (librdkafka uses -1001 for "no committed offset").
    """

    partition: int
    committed: int | None
    log_start: int | None
    log_end: int | None


@dataclass(frozen=True)
class ScalingPolicy:
    """The scaling fields of a HelloPipeline spec (defaults match the CRD)."""

    min_replicas: int = 0
    max_replicas: int = 10
    lag_threshold: int = 100
    activation_lag_threshold: int = 0
    scale_down_stabilization_seconds: int = 300
    scale_up_step: int | None = None
    scale_down_step: int | None = None
    allow_idle_consumers: bool = False
    limit_to_partitions_with_lag: bool = False
    exclude_persistent_lag: bool = False
    persistent_lag_grace_seconds: int = 60
    offset_reset_policy: OffsetResetPolicy = "earliest"
    scale_to_zero_on_invalid_offset: bool = False


@dataclass(frozen=True)
class PartitionMemory:
    """What one poll remembers about a partition for the next one.

    ``since`` is when the grace clock of rule 2 started (unix time), None
    while it does not run; ``replicas`` the Deployment's replicas at that
    poll, so that the next poll can tell whether they changed.
    """

    committed: int | None
    log_end: int | None
    persistent: bool = False
    since: float | None = None
    replicas: int | None = None


@dataclass(frozen=True)
class DecisionState:
    """State carried from one decision to the next (stored in the CR status).

    ``recommendations`` holds (unix time, replicas) pairs inside the
    stabilization window, strictly decreasing in replicas: an entry that a
    later, larger recommendation outlives can never be the window's maximum,
    so it is dropped. The list is therefore at most ``maxReplicas + 1`` long.
    """

    recommendations: tuple[tuple[float, int], ...] = ()
    partitions: Mapping[int, PartitionMemory] = field(default_factory=dict)

    def to_status(self) -> dict[str, Any]:
        return {
            "recommendations": [{"time": _iso(t), "replicas": r} for t, r in self.recommendations],
            "partitions": [_memory_to_status(p, m) for p, m in sorted(self.partitions.items())],
        }

    @classmethod
    def from_status(cls, data: Mapping[str, Any] | None) -> DecisionState:
        """Rebuild the state from ``status.decisionState``; bad entries are ignored."""
        if not data:
            return cls()
        recommendations: list[tuple[float, int]] = []
        for item in data.get("recommendations") or ():
            try:
                stamp = datetime.datetime.fromisoformat(str(item["time"]))
                recommendations.append((stamp.timestamp(), int(item["replicas"])))
            except (KeyError, TypeError, ValueError):
                continue
        partitions: dict[int, PartitionMemory] = {}
        for item in data.get("partitions") or ():
            try:
                partitions[int(item["partition"])] = _memory_from_status(item)
            except (KeyError, TypeError, ValueError):
                continue
        return cls(recommendations=tuple(recommendations), partitions=partitions)


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    lag: int
    counted: bool
    note: str = ""
    unknown: bool = False


@dataclass(frozen=True)
class Decision:
    partitions: tuple[PartitionLag, ...]
    total_lag: int
    raw_replicas: int
    recommended_replicas: int
    desired_replicas: int
    current_replicas: int
    steps: tuple[str, ...]
    state: DecisionState
    held_until: float | None = None

    @property
    def explanation(self) -> str:
        return "; ".join(self.steps)

    @property
    def direction(self) -> Literal["up", "down", "none"]:
        if self.desired_replicas > self.current_replicas:
            return "up"
        if self.desired_replicas < self.current_replicas:
            return "down"
        return "none"


def decide(
    offsets: Sequence[PartitionOffsets],
    policy: ScalingPolicy,
    previous: DecisionState,
    *,
    current_replicas: int,
    now: float,
) -> Decision:
    """Decide the consumer replicas for one poll.

    Args:
        offsets: one entry per partition of the topic, as read from Kafka.
        policy: the pipeline's scaling settings.
        previous: the state returned by the previous decision (empty at first).
        current_replicas: the Deployment's replicas now.
        now: unix time of this poll; used for the stabilization window and
            the persistent-lag grace clock.

    Returns:
        The decision, whose ``state`` is to be passed back on the next poll.
    """
    if policy.lag_threshold < 1:
        raise ValueError("lag_threshold must be at least 1")
    lags, memory, unknown, uncommitted = _partition_lags(
        offsets, policy, previous, current_replicas=current_replicas, now=now
    )
    total = sum(p.lag for p in lags if p.counted)
    with_lag = sum(1 for p in lags if p.counted and p.lag > 0)
    raw = math.ceil(total / policy.lag_threshold)

    steps = [f"lag {total} / threshold {policy.lag_threshold} → {raw}"]
    persistent = [p for p in lags if not p.counted and p.partition not in unknown]
    if persistent:
        steps.append(
            f"excluded persistent lag {sum(p.lag for p in persistent)}"
            f" on partitions {_ids(persistent)}"
        )
    if unknown:
        steps.append(f"offsets unknown for partitions {sorted(unknown)}, counted as 0")

    recommended = raw
    if current_replicas == 0 and raw > 0 and total <= policy.activation_lag_threshold:
        recommended = 0
        steps.append(f"lag {total} ≤ activation {policy.activation_lag_threshold}: stays at 0")
    if not policy.allow_idle_consumers and recommended > len(lags):
        recommended = len(lags)
        steps.append(f"capped at {len(lags)} partitions")
    if policy.limit_to_partitions_with_lag and recommended > with_lag:
        recommended = with_lag
        steps.append(f"capped at {with_lag} partitions with lag")
    if uncommitted and recommended < 1:
        recommended = 1
        steps.append(
            f"kept 1 replica: partitions {sorted(uncommitted)} have no committed offset"
            " under offsetResetPolicy latest"
        )
    recommended = _clamp(recommended, policy, steps)

    window = policy.scale_down_stabilization_seconds
    history = _windowed(previous.recommendations, recommended, now=now, window=window)
    desired = recommended
    held_until: float | None = None
    if recommended < current_replicas:
        window_max = history[0][1]
        desired = max(recommended, min(window_max, current_replicas))
        if desired > recommended:
            # The window lets the count go below `desired` once every
            # recommendation at least that large has aged out.
            last_high = max(t for t, r in history if r >= desired)
            held_until = last_high + window
            verb = "held" if desired == current_replicas else f"limited to {desired}"
            steps.append(f"scale-down {verb} by window until {_clock(held_until)}")
    if unknown and desired < current_replicas:
        desired = current_replicas
        steps.append("scale-down held: offsets unknown")

    if policy.scale_up_step and desired - current_replicas > policy.scale_up_step:
        desired = current_replicas + policy.scale_up_step
        steps.append(f"scale-up limited to +{policy.scale_up_step} per poll")
    if policy.scale_down_step and current_replicas - desired > policy.scale_down_step:
        desired = current_replicas - policy.scale_down_step
        steps.append(f"scale-down limited to -{policy.scale_down_step} per poll")
    if desired > policy.max_replicas or desired < policy.min_replicas:
        desired = min(max(desired, policy.min_replicas), policy.max_replicas)
        steps.append(f"replica bounds apply at once: {desired}")

    if desired == current_replicas:
        steps.append(f"replicas stay at {desired}")
    else:
        steps.append(f"replicas {current_replicas} → {desired}")
    return Decision(
        partitions=tuple(lags),
        total_lag=total,
        raw_replicas=raw,
        recommended_replicas=recommended,
        desired_replicas=desired,
        current_replicas=current_replicas,
        steps=tuple(steps),
        state=DecisionState(recommendations=history, partitions=memory),
        held_until=held_until,
    )


def _partition_lags(
    offsets: Sequence[PartitionOffsets],
    policy: ScalingPolicy,
    previous: DecisionState,
    *,
    current_replicas: int,
    now: float,
) -> tuple[list[PartitionLag], dict[int, PartitionMemory], set[int], set[int]]:
    grace = policy.persistent_lag_grace_seconds
    lags: list[PartitionLag] = []
    memory: dict[int, PartitionMemory] = {}
    unknown: set[int] = set()
    uncommitted: set[int] = set()
    for item in sorted(offsets, key=lambda o: o.partition):
        start, end = _valid(item.log_start), _valid(item.log_end)
        committed = _valid(item.committed)
        before = previous.partitions.get(item.partition)
        if start is None or end is None:
            unknown.add(item.partition)
            lags.append(
                PartitionLag(item.partition, 0, counted=False, note="offsets unknown", unknown=True)
            )
            if before is not None:
                memory[item.partition] = before
            continue

        # A log start above the log end means the two were read at different
        # moments around a retention run; nothing is readable then.
        start = min(start, end)
        if committed is None:
            if policy.offset_reset_policy == "earliest":
                lag, note = end - start, "no committed offset: counted from log start"
            else:
                lag, note = 0, "no committed offset: 0 under latest"
                if not policy.scale_to_zero_on_invalid_offset:
                    uncommitted.add(item.partition)
        elif committed < start:
            lag, note = end - start, f"committed {committed} below log start {start}"
        elif committed > end:
            lag, note = 0, f"committed {committed} past log end {end} (stale watermark)"
        else:
            lag, note = end - committed, ""

        since = _grace_start(before, committed, lag, current_replicas=current_replicas, now=now)
        # Stuck since the previous poll excluded it: nothing has moved since.
        still_stuck = (
            before is not None
            and before.persistent
            and before.committed == committed
            and before.log_end == end
        )
        # `since < now` (not only the elapsed time) so that the clock must
        # have been seen on two polls, even with a grace of 0.
        waited = since is not None and since < now and now - since >= grace
        persistent = policy.exclude_persistent_lag and lag > 0 and (still_stuck or waited)
        memory[item.partition] = PartitionMemory(
            committed, end, persistent, since=since, replicas=current_replicas
        )
        if persistent:
            reason = (
                f"unmoved for {now - since:.0f} s at {_plural(current_replicas, 'replica')}"
                if waited and since is not None
                else "unmoved since it was excluded"
            )
            note = _join(note, f"persistent: committed offset {reason}")
        elif policy.exclude_persistent_lag and since is not None and since < now:
            note = _join(
                note, f"committed offset unmoved for {now - since:.0f} s of {grace} s grace"
            )
        lags.append(PartitionLag(item.partition, lag, counted=not persistent, note=note))
    return lags, memory, unknown, uncommitted


def _grace_start(
    before: PartitionMemory | None,
    committed: int | None,
    lag: int,
    *,
    current_replicas: int,
    now: float,
) -> float | None:
    """When the grace clock of rule 2 started, or None while it does not run."""
    if lag <= 0 or current_replicas <= 0:
        return None
    if (
        before is not None
        and before.since is not None
        and before.committed == committed
        and before.replicas == current_replicas
    ):
        return before.since
    return now


def _memory_to_status(partition: int, memory: PartitionMemory) -> dict[str, Any]:
    item: dict[str, Any] = {
        "partition": partition,
        "committed": memory.committed,
        "logEnd": memory.log_end,
        "persistent": memory.persistent,
        "replicas": memory.replicas,
    }
    if memory.since is not None:
        item["since"] = _iso(memory.since)
    return item


def _memory_from_status(item: Mapping[str, Any]) -> PartitionMemory:
    since = item.get("since")
    replicas = _optional_int(item.get("replicas"))
    return PartitionMemory(
        committed=_optional_int(item.get("committed")),
        log_end=_optional_int(item.get("logEnd")),
        # State written before the grace clock existed has no replicas; its
        # flag may come from the rule that stranded backlogs, so it is
        # checked again rather than trusted.
        persistent="replicas" in item and bool(item.get("persistent", False)),
        since=None if since is None else datetime.datetime.fromisoformat(str(since)).timestamp(),
        replicas=replicas,
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _join(note: str, more: str) -> str:
    return f"{note}; {more}" if note else more


def _clamp(replicas: int, policy: ScalingPolicy, steps: list[str]) -> int:
    if replicas < policy.min_replicas:
        steps.append(f"raised to minReplicas {policy.min_replicas}")
        return policy.min_replicas
    if replicas > policy.max_replicas:
        steps.append(f"capped at maxReplicas {policy.max_replicas}")
        return policy.max_replicas
    return replicas


def _windowed(
    history: Sequence[tuple[float, int]],
    recommended: int,
    *,
    now: float,
    window: float,
) -> tuple[tuple[float, int], ...]:
    """Recommendations inside the window after adding this one (a max-queue)."""
    kept = [(t, r) for t, r in history if now - t < window and t <= now]
    while kept and kept[-1][1] <= recommended:
        kept.pop()
    kept.append((now, recommended))
    return tuple(kept)


def _valid(offset: int | None) -> int | None:
    return offset if offset is not None and offset >= 0 else None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _ids(lags: Sequence[PartitionLag]) -> list[int]:
    return [p.partition for p in lags]


def _iso(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat()


def _clock(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%H:%M:%S")
