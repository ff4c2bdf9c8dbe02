import itertools
import math

import pytest

from hello_loadtest.schedule import (
    Phase,
    arrivals,
    burst,
    closed_loops_for,
    constant,
    cumulative,
    ramp,
    shard,
    soak,
)
from hello_loadtest.units import parse_duration


def offsets(scenario, **kwargs):
    return [a.at_s for a in arrivals(scenario, **kwargs)]


def test_constant_rate_spaces_calls_evenly_from_half_an_interval():
    times = offsets(constant(50, 3))
    assert len(times) == 150
    assert times[:3] == pytest.approx([0.01, 0.03, 0.05])
    assert times[-1] == pytest.approx(2.99)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
    assert gaps == {0.02}


def test_constant_rate_with_fractional_calls_rounds_to_the_nearest_whole_call():
    # A call is scheduled at each target k + 0.5 below the expected count.
    assert len(offsets(constant(3, 0.6))) == 2  # 1.8 expected
    assert len(offsets(constant(3, 0.5))) == 1  # 1.5 expected: the target 1.5 is not below it
    assert len(offsets(constant(3, 0.4))) == 1  # 1.2 expected


def test_ramp_from_zero_places_the_kth_call_where_the_quadratic_count_reaches_it():
    # rate(t) = 100 t over 2 s: cumulative(t) = 50 t^2, 200 calls in all.
    times = offsets(ramp(0, 200, 2))
    assert len(times) == 200
    for k in (0, 1, 57, 199):
        assert times[k] == pytest.approx(math.sqrt((k + 0.5) / 50))


def test_falling_ramp_sends_the_same_number_of_calls_front_loaded():
    times = offsets(ramp(200, 0, 2))
    assert len(times) == 200
    first_half = sum(1 for t in times if t < 1)
    assert first_half == 150  # cumulative(1) = 200 - 50 = 150


def test_burst_sends_nothing_while_idle_at_rate_zero_and_the_spike_rate_during_spikes():
    scenario = burst(base_rate=0, spike_rate=100, idle_s=1, spike_s=0.5, cycles=2)
    times = offsets(scenario)
    assert len(times) == 100
    in_spikes = [t for t in times if 1 <= t < 1.5 or 2.5 <= t < 3]
    assert len(in_spikes) == 100
    assert times[0] == pytest.approx(1.005)
    assert times[50] == pytest.approx(2.505)
    assert scenario.duration_s == pytest.approx(4.0)


def test_burst_with_a_base_rate_keeps_sending_between_spikes():
    scenario = burst(base_rate=10, spike_rate=100, idle_s=1, spike_s=1, cycles=1)
    times = offsets(scenario)
    assert len(times) == 10 + 100 + 10
    assert sum(1 for t in times if t < 1) == 10
    assert sum(1 for t in times if 1 <= t < 2) == 100


def test_warmup_runs_at_the_first_rate_before_the_measured_part_and_is_flagged():
    scenario = ramp(10, 30, 2, warmup_s=1)
    schedule = list(arrivals(scenario))
    warm = [a for a in schedule if a.warmup]
    assert len(warm) == 10
    assert all(a.at_s < 1 for a in warm)
    assert len(schedule) == 10 + 40
    assert scenario.duration_s == pytest.approx(2.0)


def test_soak_is_a_constant_schedule_reported_under_its_own_kind():
    assert offsets(soak(20, 5)) == offsets(constant(20, 5))
    assert soak(20, 5).kind == "soak"


def test_poisson_arrivals_are_reproducible_and_keep_the_mean_rate():
    a = offsets(constant(1000, 10), process="poisson", seed=7)
    b = offsets(constant(1000, 10), process="poisson", seed=7)
    c = offsets(constant(1000, 10), process="poisson", seed=8)
    assert a == b
    assert a != c
    # Poisson count over 10 s at 1000/s: sd = 100, allow 4 sd.
    assert abs(len(a) - 10_000) < 400
    assert a == sorted(a)


def test_cumulative_is_the_integral_of_the_piecewise_linear_rate():
    phases = (Phase(2, 0, 100), Phase(1, 50, 50))
    assert cumulative(phases, 1) == pytest.approx(25)
    assert cumulative(phases, 2) == pytest.approx(100)
    assert cumulative(phases, 2.5) == pytest.approx(125)
    assert cumulative(phases, 10) == pytest.approx(150)


def test_shards_partition_the_schedule_without_overlap():
    schedule = list(arrivals(constant(100, 1)))
    parts = [list(shard(schedule, w, 3)) for w in range(3)]
    assert [len(p) for p in parts] == [34, 33, 33]
    indexes = sorted(a.index for p in parts for a in p)
    assert indexes == list(range(100))
    assert parts[1][0].at_s == pytest.approx(0.015)


def test_shard_rejects_a_worker_outside_the_pool():
    with pytest.raises(ValueError, match=r"not in 0\.\.1"):
        list(shard([], 2, 2))


def test_closed_loops_are_spread_evenly_across_workers():
    assert [closed_loops_for(w, 3, 10) for w in range(3)] == [4, 3, 3]
    assert [closed_loops_for(w, 4, 2) for w in range(4)] == [1, 1, 0, 0]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("3s", 3.0), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5), (" 4 s ", 4.0)],
)
def test_durations_accept_ms_s_m_h_and_bare_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_durations_refuse_unknown_units():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("3 days")


def test_phases_refuse_negative_rates_and_empty_durations():
    with pytest.raises(ValueError):
        Phase(0, 1, 1)
    with pytest.raises(ValueError):
        Phase(1, -1, 1)
