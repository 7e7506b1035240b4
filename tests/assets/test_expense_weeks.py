"""A run's expense dates are enriched a training week at a time (Monday to Sunday)."""

from datetime import date, timedelta

import pytest

from assets.expenses import GOLD, recent_label_counts, training_weeks
from expectations.expense_lines import LABEL_DRIFT_LOOKBACK_DAYS
from infra.lakehouse import LakehouseResource
from transforms.frames import local_frame


def test_a_run_is_split_at_each_monday_and_keeps_date_order():
    friday = date(2026, 10, 2)
    days = [friday + timedelta(days=i) for i in range(10)]  # Fri 2 Oct .. Sun 11 Oct
    assert training_weeks(list(reversed(days))) == [days[:3], days[3:]]
    assert training_weeks([date(2026, 10, 7)]) == [[date(2026, 10, 7)]]
    assert training_weeks([]) == []


@pytest.mark.spark
def test_the_drift_reference_of_each_date_is_gold_over_the_days_before_it(spark, lakehouse_root):
    lakehouse = LakehouseResource()
    d = date(2026, 10, 20)
    rows = [
        (d - timedelta(days=LABEL_DRIFT_LOOKBACK_DAYS + 1), "travel"),  # too old for d
        (d - timedelta(days=LABEL_DRIFT_LOOKBACK_DAYS), "travel"),
        (d - timedelta(days=1), "meals"),
        (d - timedelta(days=1), None),  # no label: not counted
        (d, "meals"),  # only for the day after
        (d + timedelta(days=1), "lodging"),  # the last date's own: not in anyone's window
    ]
    lakehouse.write_dates(
        local_frame(spark, rows, "business_date date, spend_category string"),
        GOLD.gold,
        sorted({r[0] for r in rows}),
    )
    assert recent_label_counts(lakehouse, spark, [d, d + timedelta(days=1)]) == {
        d: {"travel": 1, "meals": 1},
        d + timedelta(days=1): {"meals": 2},
    }
    assert recent_label_counts(lakehouse, spark, []) == {}
