"""``as_of_dates``: each row once per as-of date whose window holds it."""

from datetime import date, timedelta

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, as_of_dates

D = date(2026, 10, 10)


@pytest.mark.parametrize("lookback", [None, 0, 3])
@pytest.mark.parametrize(
    "days",
    [
        [D - timedelta(days=2), D - timedelta(days=1), D],  # a range
        [D, D - timedelta(days=5)],  # dates apart, unsorted
    ],
)
def test_each_row_once_per_as_of_date_that_sees_it(spark, days, lookback):
    rows = [(i, D - timedelta(days=n)) for i, n in enumerate([-1, 0, 1, 3, 4, 6, 8, 400])]
    rows.append((99, None))  # no date: seen on none
    df = spark.createDataFrame(rows, "id int, business_date date")
    expected = [
        (i, landed, day)
        for i, landed in rows
        for day in sorted(set(days))
        if landed is not None
        and landed <= day
        and (lookback is None or landed >= day - timedelta(days=lookback))
    ]
    assert expected  # the case is not empty
    assert_df_equality(
        as_of_dates(df, days, lookback).select("id", "business_date", AS_OF),
        spark.createDataFrame(expected, f"id int, business_date date, {AS_OF} date"),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_another_date_column_can_be_the_one_windowed(spark):
    df = spark.createDataFrame([(1, D)], "id int, landed date")
    out = as_of_dates(df, [D, D + timedelta(days=1)], 0, column="landed")
    assert out.select(F.col(AS_OF)).collect() == [(D,)]
