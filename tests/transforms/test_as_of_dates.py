"""``as_of_dates``: each row once per as-of date whose window holds it."""

from datetime import date, timedelta

from chispa import assert_df_equality
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, as_of_dates
from transforms.frames import local_frame

D = date(2026, 10, 10)


CASES = [
    (days, lookback)
    for days in (
        [D - timedelta(days=2), D - timedelta(days=1), D],  # a range
        [D, D - timedelta(days=5)],  # dates apart, unsorted
    )
    for lookback in (None, 0, 3)
]


def test_each_row_once_per_as_of_date_that_sees_it(spark):
    rows = [(i, D - timedelta(days=n)) for i, n in enumerate([-1, 0, 1, 3, 4, 6, 8, 400])]
    rows.append((99, None))  # no date: seen on none
    df = local_frame(spark, rows, "id int, business_date date")
    # Every case in one plan (one Spark job), each tagged with its number.
    got = as_of_dates(df, CASES[0][0], CASES[0][1]).withColumn("case", F.lit(0))
    for n, (days, lookback) in enumerate(CASES[1:], start=1):
        got = got.unionByName(as_of_dates(df, days, lookback).withColumn("case", F.lit(n)))
    expected = [
        (n, i, landed, day)
        for n, (days, lookback) in enumerate(CASES)
        for i, landed in rows
        for day in sorted(set(days))
        if landed is not None
        and landed <= day
        and (lookback is None or landed >= day - timedelta(days=lookback))
    ]
    assert {e[0] for e in expected} == set(range(len(CASES)))  # no case is empty
    assert_df_equality(
        got.select("case", "id", "business_date", AS_OF),
        local_frame(spark, expected, f"case int, id int, business_date date, {AS_OF} date"),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_another_date_column_can_be_the_one_windowed(spark):
    df = local_frame(spark, [(1, D)], "id int, landed date")
    out = as_of_dates(df, [D, D + timedelta(days=1)], 0, column="landed")
    assert out.select(F.col(AS_OF)).collect() == [(D,)]
