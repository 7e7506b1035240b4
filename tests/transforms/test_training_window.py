"""The history model's training window is a function of the date alone (Spark-free)."""

from datetime import date, timedelta

import pytest

from transforms.training_window import history_reach_days, training_window

MONDAY = date(2026, 9, 28)
WEEK = [MONDAY + timedelta(days=n) for n in range(7)]


def test_every_date_of_a_week_has_one_window_ending_before_the_week():
    windows = {training_window(day, 90) for day in WEEK}
    assert len(windows) == 1
    [window] = windows
    assert window.week_start == MONDAY
    assert window.last == MONDAY - timedelta(days=1)
    assert (window.last - window.first).days + 1 == 90
    # No date of the week learns from a date of its own week: what a ranged run has (or has not)
    # written for the earlier dates of its range cannot change a later date's model.
    assert all(window.last < day and window.serves(day) for day in WEEK)
    assert not window.serves(MONDAY + timedelta(days=7))
    assert not window.serves(MONDAY - timedelta(days=1))


def test_a_monday_learns_from_the_days_before_it_and_the_next_week_moves_on():
    window = training_window(MONDAY, 90)
    assert (window.first, window.last) == (MONDAY - timedelta(days=90), MONDAY - timedelta(days=1))
    following = training_window(MONDAY + timedelta(days=7), 90)
    assert following.first - window.first == timedelta(days=7)


@pytest.mark.parametrize("history_days", [1, 90])
def test_the_reach_covers_every_window(history_days: int):
    reach = history_reach_days(history_days)
    for n in range(21):
        day = MONDAY + timedelta(days=n)
        window = training_window(day, history_days)
        assert day - timedelta(days=reach) <= window.first


def test_history_days_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        training_window(MONDAY, 0)
