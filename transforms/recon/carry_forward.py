"""Carry-forward of the matching recons: which exceptions of ``D - 1`` closed on ``D``, and why.

Stateless: the exceptions open as of ``D - 1`` are recomputed from the records that had landed by
``D - 1`` (the recons ignore later records), so a backfill gives the same answer as nightly runs.
"""

from collections.abc import Callable
from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from transforms.recon.common import EXCEPTION_COLUMNS, ReconResult, identity
from transforms.reference_data import RECON_LOOKBACK_DAYS

LOOKBACK_DAYS = RECON_LOOKBACK_DAYS


def carry_forward(
    open_today: DataFrame,
    open_yesterday: DataFrame,
    matches_today: DataFrame,
    as_of: date,
    lookback_days: int = LOOKBACK_DAYS,
) -> DataFrame:
    """Today's open exceptions plus a ``closed`` row for each one open yesterday and not today.

    Resolution: ``matched`` when every record of the exception is in one of today's matches (left
    or right side), else ``aged_out`` when its ``first_seen_date`` has left the window, else
    ``superseded`` (its records now belong to another exception, or it no longer holds).
    """
    closed = open_yesterday.join(open_today.select("exception_id"), "exception_id", "left_anti")
    matched_records = (
        matches_today.select(F.explode(F.concat("left_records", "right_records")).alias("record"))
        .distinct()
        .withColumn("_matched", F.lit(1))
    )
    all_matched = (
        closed.select("exception_id", F.explode("records").alias("record"))
        .join(matched_records, "record", "left")
        .groupBy("exception_id")
        .agg(F.min(F.coalesce("_matched", F.lit(0))).alias("_all_matched"))
    )
    oldest = as_of - timedelta(days=lookback_days)
    resolution = (
        F.when(F.col("_all_matched") == 1, F.lit("matched"))
        .when(F.col("first_seen_date") < F.lit(oldest), F.lit("aged_out"))
        .otherwise(F.lit("superseded"))
    )
    closed_rows = (
        closed.join(all_matched, "exception_id", "left")
        .withColumn("business_date", F.lit(as_of))
        .withColumn("status", F.lit("closed"))
        .withColumn("resolution", resolution)
        .withColumn("closed_on", F.lit(as_of))
        .withColumn("age_days", F.datediff(F.lit(as_of), F.col("first_seen_date")).cast("int"))
        .select(*EXCEPTION_COLUMNS)
    )
    return open_today.select(*EXCEPTION_COLUMNS).unionByName(closed_rows)


def reconcile_with_carry_forward(
    recon: Callable[..., ReconResult],
    *inputs: DataFrame,
    as_of: date,
    lookback_days: int = LOOKBACK_DAYS,
    materialize: Callable[[DataFrame], DataFrame] = identity,
) -> ReconResult:
    """Run ``recon(*inputs, as_of)`` for ``as_of`` and the day before, and carry forward.

    ``recon`` is ``reconcile_bank_gl`` or ``reconcile_ap_gl`` (or any function with that shape that
    ignores records landed after its as-of date). Returns today's matches and the exceptions to
    report on ``as_of``: open ones and the ones that closed that day. ``materialize`` is handed to
    the recons and applied to their results.
    """

    def run(day: date) -> ReconResult:
        result = recon(*inputs, day, materialize)
        return ReconResult(materialize(result.matches), materialize(result.exceptions))

    today = run(as_of)
    yesterday = run(as_of - timedelta(days=1))
    exceptions = carry_forward(
        today.exceptions, yesterday.exceptions, today.matches, as_of, lookback_days
    )
    return ReconResult(matches=today.matches, exceptions=exceptions)
