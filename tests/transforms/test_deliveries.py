"""Repeated deliveries: order-free fingerprints, the earliest copy is the original."""

from datetime import date

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from transforms.deliveries import (
    FINGERPRINT_COLUMNS,
    delivery_fingerprints,
    repeated_deliveries,
    with_repeat_of,
)
from transforms.frames import local_frame

D1, D2 = date(2026, 11, 19), date(2026, 11, 20)


def landed(spark: SparkSession, *rows: tuple[date, str, str | None]):
    """Bronze-shaped rows: ``(business_date, _source_file, _row_hash)``; hashes are SHA-256 hex."""
    return local_frame(
        spark, rows, "business_date date, _source_file string, _row_hash string"
    ).selectExpr("business_date", "_source_file", "sha2(coalesce(_row_hash, ''), 256) AS _row_hash")


def fingerprints(spark, *rows):
    return landed(spark, *rows).transform(delivery_fingerprints())


def test_a_fingerprint_ignores_row_order_but_counts_every_row(spark):
    prints = {
        r["delivery"]: r["fingerprint"]
        for r in fingerprints(
            spark,
            (D1, "a.csv", "x"),
            (D1, "a.csv", "y"),
            (D1, "b.csv", "y"),
            (D1, "b.csv", "x"),
            (D1, "c.csv", "x"),
            (D1, "c.csv", "y"),
            (D1, "c.csv", "y"),
            (D1, "d.csv", "x"),
            (D1, "d.csv", "z"),
            (D1, "e.csv", None),
        ).collect()
    }
    assert prints["a.csv"] == prints["b.csv"]  # same rows, other order
    assert prints["c.csv"] != prints["a.csv"]  # one row twice
    assert prints["d.csv"] != prints["a.csv"]  # one row differs
    assert len(set(prints.values())) == 4


def test_the_earliest_delivery_is_the_original_and_every_later_copy_repeats_it(spark):
    prints = fingerprints(
        spark,
        (D2, "gl_2.csv", "x"),  # yesterday's file re-sent under today's name
        (D2, "gl_2.csv", "y"),
        (D1, "gl_1.csv", "y"),
        (D1, "gl_1.csv", "x"),
        (D1, "gl_1_copy.csv", "x"),  # the same file twice on one date
        (D1, "gl_1_copy.csv", "y"),
        (D2, "other.csv", "z"),
    )
    expected = local_frame(
        spark,
        [(D1, "gl_1_copy.csv", "gl_1.csv", D1), (D2, "gl_2.csv", "gl_1.csv", D1)],
        "business_date date, delivery string, original string, original_date date",
    )
    assert_df_equality(
        repeated_deliveries(prints), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_empty_deliveries_repeat_nothing(spark):
    empty = local_frame(
        spark,
        [(D1, "a.csv", 0, "0::"), (D2, "b.csv", 0, "0::")],
        "business_date date, delivery string, rows long, fingerprint string",
    ).select(*FINGERPRINT_COLUMNS)
    assert repeated_deliveries(empty).count() == 0


def test_rows_of_a_repeat_name_what_they_repeat_and_others_are_untouched(spark):
    rows = landed(spark, (D2, "gl_2.csv", "x"), (D2, "gl_new.csv", "q"), (D1, "gl_1.csv", "x"))
    repeats = local_frame(
        spark,
        [(D2, "gl_2.csv", "gl_1.csv", D1)],
        "business_date date, delivery string, original string, original_date date",
    )
    marked = {
        (r["business_date"], r["_source_file"]): r["_repeat_of"]
        for r in rows.transform(with_repeat_of(repeats)).collect()
    }
    assert marked == {
        (D2, "gl_2.csv"): "gl_1.csv (landed for 2026-11-19)",
        (D2, "gl_new.csv"): None,
        (D1, "gl_1.csv"): None,
    }
