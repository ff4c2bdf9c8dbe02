from hello_loadtest.sweep import Criteria, Step, highest_held, ratio, relative_difference


def step(rate, p99, *, achieved=None, errors=0.0):
    return Step(rate, rate if achieved is None else achieved, p99 / 2, p99, errors, False)


def test_the_highest_held_rate_is_the_top_of_the_unbroken_run_from_below():
    steps = [step(500, 5), step(1000, 20), step(2000, 49.9), step(3000, 80), step(4000, 45)]
    assert highest_held(steps, Criteria()) == 2000


def test_a_step_fails_on_errors_or_on_a_rate_the_server_did_not_take():
    criteria = Criteria()
    assert not criteria.held(step(1000, 5, errors=0.002))
    assert not criteria.held(step(1000, 5, achieved=940))
    assert criteria.held(step(1000, 5, achieved=950, errors=0.001))


def test_no_rate_holds_when_the_lowest_step_already_fails():
    assert highest_held([step(500, 60), step(1000, 10)], Criteria()) is None


def test_ratios_and_differences_are_rounded_and_safe_with_missing_figures():
    assert ratio(1700, 2000) == 0.85
    assert ratio(None, 2000) is None
    assert ratio(1000, None) is None
    assert relative_difference(950, 1000) == -0.05
    assert relative_difference(1, 0) is None
