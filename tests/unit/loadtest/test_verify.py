from hello_loadtest.stats import percentiles
from hello_loadtest.verify import Delivered, reconcile

from .hdr import hdr


def test_reconcile_counts_lost_duplicated_and_foreign_records():
    delivered = [
        Delivered("a", 1_000, 1_004),
        Delivered("b", 1_000, 1_010),
        Delivered("a", 1_000, 1_050),  # a duplicate: its latency is not counted again
        Delivered("zz", 1_000, 1_001),  # another run's record
    ]
    result = reconcile(["a", "b", "c"], delivered)
    assert (result.expected, result.received, result.lost) == (3, 3, 1)
    assert (result.duplicates, result.unexpected) == (1, 1)
    e2e = percentiles(result.e2e)
    assert (e2e.count, e2e.min, e2e.max) == (2, hdr(4.0), hdr(10.0))


def test_reconcile_with_everything_delivered_once_reports_no_loss():
    ids = [f"id{i}" for i in range(100)]
    result = reconcile(ids, [Delivered(i, 0, n) for n, i in enumerate(ids)])
    assert (result.lost, result.duplicates, result.received) == (0, 0, 100)
    assert percentiles(result.e2e).p50 == hdr(49.0)


def test_a_greeting_processed_in_the_same_millisecond_counts_as_the_floor_value():
    result = reconcile(["a"], [Delivered("a", 5, 5)])
    assert result.e2e.get_total_count() == 1
    assert percentiles(result.e2e).max == 0.001
