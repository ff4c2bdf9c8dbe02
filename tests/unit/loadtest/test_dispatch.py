import asyncio

import pytest

from hello_loadtest.dispatch import STOP_CHECK_S, Stop, run_closed, run_open
from hello_loadtest.schedule import arrivals, constant
from hello_loadtest.stats import Recorder, percentiles

from .hdr import hdr


def fake_server(clock, service_s, *, log=None, code="OK"):
    async def call(index):
        if log is not None:
            log.append((index, clock.now()))
        await clock.sleep_until(clock.now() + service_s)
        return (code, f"id-{index}")

    return call


async def test_calls_start_at_their_scheduled_times_and_latency_equals_service_time(clock):
    started = []
    rec = Recorder(keep_ids=True)
    await clock.run(
        run_open(
            arrivals(constant(10, 1)),
            clock=clock,
            start_at=100.0,
            stop_at=200.0,
            recorder=rec,
            call=fake_server(clock, 0.02, log=started),
            max_in_flight=100,
        )
    )
    assert [round(t - 100, 6) for _, t in started] == pytest.approx(
        [0.05 + 0.1 * k for k in range(10)]
    )
    assert (rec.scheduled, rec.sent, rec.ok, rec.failed) == (10, 10, 10, 0)
    p = percentiles(rec.latency)
    assert (p.min, p.max) == (hdr(20.0), hdr(20.0))
    assert rec.late_generator + rec.late_concurrency_limit == 0
    assert len(rec.ok_ids) == 10


async def test_a_stalled_generator_starts_late_calls_at_once_and_charges_the_wait_to_latency(
    clock,
):
    # 100/s, 1 ms per call; at 12 ms something hogs the generator's loop for 50 ms.
    rec = Recorder(late_threshold_s=0.005)

    async def hog():
        await clock.sleep_until(100.012)
        clock.busy(0.05)

    async def both():
        await asyncio.gather(
            hog(),
            run_open(
                arrivals(constant(100, 1)),
                clock=clock,
                start_at=100.0,
                stop_at=200.0,
                recorder=rec,
                call=fake_server(clock, 0.001),
                max_in_flight=100,
            ),
        )

    await clock.run(both())
    assert rec.sent == 100
    # Calls due at 15, 25, 35, 45 and 55 ms could only start at 62 ms.
    assert rec.late_generator == 5
    assert rec.late_concurrency_limit == 0
    assert percentiles(rec.latency).max == hdr(48.0)  # 47 late + 1
    assert percentiles(rec.service).max == hdr(1.0)
    assert percentiles(rec.start_lag).max == hdr(47.0)


async def test_a_slow_server_behind_a_full_in_flight_limit_is_charged_to_the_limit(clock):
    # 100/s for 0.2 s = 20 calls; each takes 50 ms; only 2 may be in flight.
    rec = Recorder(late_threshold_s=0.005)
    await clock.run(
        run_open(
            arrivals(constant(100, 0.2)),
            clock=clock,
            start_at=100.0,
            stop_at=200.0,
            recorder=rec,
            call=fake_server(clock, 0.05),
            max_in_flight=2,
        )
    )
    assert (rec.sent, rec.ok) == (20, 20)
    assert rec.late_generator == 0
    assert rec.late_concurrency_limit == 18  # all but the first two waited for a slot
    # Slots free up in pairs every 50 ms: calls start at 5, 15, 55, 65, 105, ...
    # The last one was due at 195 ms, started at 465 ms and ended at 515 ms.
    assert percentiles(rec.latency).max == hdr(320.0)
    assert percentiles(rec.service).max == hdr(50.0)


async def test_calls_still_due_at_the_stop_time_are_counted_as_not_sent(clock):
    rec = Recorder()
    await clock.run(
        run_open(
            arrivals(constant(10, 1)),
            clock=clock,
            start_at=100.0,
            stop_at=100.5,
            recorder=rec,
            call=fake_server(clock, 0.001),
            max_in_flight=10,
        )
    )
    assert (rec.scheduled, rec.sent, rec.not_sent) == (10, 5, 5)


async def test_failed_calls_are_counted_by_code(clock):
    rec = Recorder()
    await clock.run(
        run_open(
            arrivals(constant(10, 0.5)),
            clock=clock,
            start_at=100.0,
            stop_at=200.0,
            recorder=rec,
            call=fake_server(clock, 0.001, code="UNAVAILABLE"),
            max_in_flight=10,
        )
    )
    assert (rec.ok, dict(rec.failed_by_code)) == (0, {"UNAVAILABLE": 5})


async def test_a_call_that_raises_is_counted_as_a_client_error_and_the_run_goes_on(clock):
    rec = Recorder()

    async def broken(index):
        if index == 1:
            raise RuntimeError("bug")
        return ("OK", None)

    await clock.run(
        run_open(
            arrivals(constant(10, 0.3)),
            clock=clock,
            start_at=100.0,
            stop_at=200.0,
            recorder=rec,
            call=broken,
            max_in_flight=10,
        )
    )
    assert (rec.ok, dict(rec.failed_by_code)) == (2, {"CLIENT_ERROR": 1})


async def test_closed_loops_send_back_to_back_for_the_duration(clock):
    rec = Recorder()
    seen = []
    await clock.run(
        run_closed(
            loops=2,
            clock=clock,
            start_at=100.0,
            end_at=101.0,
            recorder=rec,
            call=fake_server(clock, 0.125, log=seen),
            first_index=1,
            index_step=3,
        )
    )
    # Two loops, 125 ms per call, for 1 s: eight calls each.
    assert rec.ok == 16
    assert sorted(i for i, _ in seen)[:4] == [1, 4, 7, 10]
    assert percentiles(rec.latency).max == hdr(125.0)
    assert rec.late_generator + rec.late_concurrency_limit == 0


async def test_closed_loops_stop_at_the_call_limit(clock):
    rec = Recorder()
    await clock.run(
        run_closed(
            loops=3,
            clock=clock,
            start_at=100.0,
            end_at=1000.0,
            recorder=rec,
            call=fake_server(clock, 0.1),
            max_calls=7,
        )
    )
    assert rec.sent == 7


def stop_at(clock, stop, when):
    async def request():
        await clock.sleep_until(when)
        stop.request(clock.now())

    return request()


async def test_a_stop_starts_no_new_call_and_waits_for_those_in_flight(clock):
    rec = Recorder()
    stop = Stop()

    async def both():
        await asyncio.gather(
            stop_at(clock, stop, 100.52),
            run_open(
                arrivals(constant(10, 10)),
                clock=clock,
                start_at=100.0,
                stop_at=200.0,
                recorder=rec,
                call=fake_server(clock, 0.3),
                max_in_flight=100,
                stop=stop,
            ),
        )

    await clock.run(both())
    # Due at 50, 150, ..., 450 ms: five calls; the one due at 550 ms never came due.
    assert (rec.scheduled, rec.sent, rec.ok, rec.not_sent) == (5, 5, 5, 0)
    # The call started at 450 ms was waited for: it ended at 750 ms.
    assert clock.now() == pytest.approx(100.75)
    assert rec.last_end_s == pytest.approx(0.75)


async def test_calls_waiting_for_a_slot_when_the_stop_comes_are_counted_as_not_sent(clock):
    rec = Recorder()
    stop = Stop()

    async def both():
        await asyncio.gather(
            stop_at(clock, stop, 100.5),
            run_open(
                arrivals(constant(10, 10)),
                clock=clock,
                start_at=100.0,
                stop_at=200.0,
                recorder=rec,
                call=fake_server(clock, 1.0),
                max_in_flight=1,
                stop=stop,
            ),
        )

    await clock.run(both())
    # One call holds the only slot until 1.05 s; the four others due before the
    # stop at 0.5 s never start.
    assert (rec.scheduled, rec.sent, rec.ok, rec.not_sent) == (5, 1, 1, 4)
    assert clock.now() == pytest.approx(101.05)


async def test_a_stop_during_a_long_gap_between_arrivals_ends_the_loop_promptly(clock):
    rec = Recorder()
    stop = Stop()

    async def both():
        await asyncio.gather(
            stop_at(clock, stop, 100.2),
            run_open(
                arrivals(constant(0.1, 100)),  # the first call is due at 5 s
                clock=clock,
                start_at=100.0,
                stop_at=300.0,
                recorder=rec,
                call=fake_server(clock, 0.01),
                max_in_flight=10,
                stop=stop,
            ),
        )

    await clock.run(both())
    assert (rec.scheduled, rec.sent) == (0, 0)
    assert clock.now() - 100.2 <= STOP_CHECK_S + 1e-9


async def test_closed_loops_finish_their_current_call_after_a_stop(clock):
    rec = Recorder()
    stop = Stop()

    async def both():
        await asyncio.gather(
            stop_at(clock, stop, 100.35),
            run_closed(
                loops=2,
                clock=clock,
                start_at=100.0,
                end_at=110.0,
                recorder=rec,
                call=fake_server(clock, 0.1),
                stop=stop,
            ),
        )

    await clock.run(both())
    # Calls start at 0, 0.1, 0.2 and 0.3 s in each loop; none after the stop.
    assert (rec.sent, rec.ok) == (8, 8)
    assert clock.now() == pytest.approx(100.4)
