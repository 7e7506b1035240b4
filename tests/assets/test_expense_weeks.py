"""A run's expense dates are enriched a training week at a time (Monday to Sunday)."""

from datetime import date, timedelta

from assets.expenses import training_weeks


def test_a_run_is_split_at_each_monday_and_keeps_date_order():
    friday = date(2026, 10, 2)
    days = [friday + timedelta(days=i) for i in range(10)]  # Fri 2 Oct .. Sun 11 Oct
    assert training_weeks(list(reversed(days))) == [days[:3], days[3:]]
    assert training_weeks([date(2026, 10, 7)]) == [[date(2026, 10, 7)]]
    assert training_weeks([]) == []
