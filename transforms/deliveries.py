"""Repeated deliveries: a file whose content is the same as a file already landed.

A source system that re-sends yesterday's export under today's name (or the same file twice under
two names) would double every amount in it; deduplication by business key does not see it when
the copy lands on another date, or when the key is a surrogate (names repeat, lines are numbered
per file). A delivery's fingerprint is its row count and two order-free sums of its rows' content
hashes, computed in one aggregation without collecting the rows. The earliest delivery
with a fingerprint (by business date, then name) is the original; every later one repeats it.
"""

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.ingest import ROW_HASH_COLUMN, SOURCE_FILE_COLUMN

FINGERPRINT_COLUMNS = ["business_date", "delivery", "rows", "fingerprint"]
REPEAT_OF_COLUMN = "_repeat_of"
_HEX_DIGITS = 15  # 60 bits per slice of the SHA-256: a sum of 2^60-bounded longs fits decimal(38)


def _column(column: str | Column) -> Column:
    return F.col(column) if isinstance(column, str) else column


def _slice_sum(content_hash: Column, start: int) -> Column:
    part = F.conv(F.substring(content_hash, start, _HEX_DIGITS), 16, 10).cast("decimal(38,0)")
    return F.sum(part).cast("string")


def delivery_fingerprints(
    delivery: str | Column = SOURCE_FILE_COLUMN, content_hash: str | Column = ROW_HASH_COLUMN
) -> Callable[[DataFrame], DataFrame]:
    """One row per ``(business_date, delivery)``: its rows and a fingerprint of their content.

    ``content_hash`` is a row's SHA-256 (hex) over its content only (not the delivery's name nor
    anything derived from it). The fingerprint ignores row order and counts repeated rows.
    """

    def transform(df: DataFrame) -> DataFrame:
        hashed = df.select(
            "business_date", _column(delivery).alias("delivery"), _column(content_hash).alias("_h")
        )
        return hashed.groupBy("business_date", "delivery").agg(
            F.count(F.lit(1)).alias("rows"),
            F.concat_ws(
                ":",
                F.count(F.lit(1)).cast("string"),
                _slice_sum(F.col("_h"), 1),
                _slice_sum(F.col("_h"), 1 + _HEX_DIGITS),
            ).alias("fingerprint"),
        )

    return transform


def repeated_deliveries(fingerprints: DataFrame) -> DataFrame:
    """Deliveries whose content an earlier one already brought.

    Returns ``business_date, delivery, original, original_date`` for every repeat; the original is
    the first delivery with that fingerprint by ``(business_date, delivery)``, so the answer is the
    same whichever order the dates were processed in. Empty deliveries repeat nothing.
    """
    first = Window.partitionBy("fingerprint").orderBy("business_date", "delivery")
    ranked = (
        fingerprints.where(F.col("rows") > 0)
        .withColumn("original", F.first("delivery").over(first))
        .withColumn("original_date", F.first("business_date").over(first))
        .withColumn("position", F.row_number().over(first))
    )
    return ranked.where(F.col("position") > 1).select(
        "business_date", "delivery", "original", "original_date"
    )


def with_repeat_of(
    repeats: DataFrame, delivery: str = SOURCE_FILE_COLUMN
) -> Callable[[DataFrame], DataFrame]:
    """Add ``_repeat_of``: for each row of a repeated delivery, the delivery it repeats."""

    def transform(df: DataFrame) -> DataFrame:
        lookup = repeats.select(
            F.col("business_date").alias("_r_date"),
            F.col("delivery").alias("_r_delivery"),
            F.concat(
                F.col("original"), F.lit(" (landed for "), F.col("original_date"), F.lit(")")
            ).alias(REPEAT_OF_COLUMN),
        )
        joined = df.join(
            F.broadcast(lookup),
            (F.col("business_date") == F.col("_r_date"))
            & (F.col(delivery) == F.col("_r_delivery")),
            "left",
        )
        return joined.drop("_r_date", "_r_delivery")

    return transform
