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

    ``carry_forward_dates`` for the one date ``as_of``.
    """
    return carry_forward_dates(
        open_today.select(*EXCEPTION_COLUMNS).unionByName(
            open_yesterday.select(*EXCEPTION_COLUMNS)
        ),
        matches_today,
        [as_of],
        lookback_days,
    )


def carry_forward_dates(
    open_exceptions: DataFrame,
    matches: DataFrame,
    days: list[date],
    lookback_days: int = LOOKBACK_DAYS,
) -> DataFrame:
    """For each ``D`` of ``days``: the exceptions open on ``D``, plus a ``closed`` row (reported on
    ``D``) for each one open on ``D - 1`` and not on ``D``.

    ``open_exceptions`` holds the open exceptions as of each date of ``days`` and of the day before
    each (``business_date`` is the as-of date); ``matches`` the matches as of the dates of ``days``
    (other dates are ignored).

    Both may hold several reconciliations (``recon``): an exception is carried forward against its
    own reconciliation's matches only.

    Resolution: ``matched`` when every record of the exception is in one of ``D``'s matches of its
    reconciliation (left or right side), else ``aged_out`` when its ``first_seen_date`` has left
    ``D``'s window, else ``superseded`` (its records now belong to another exception, or it no
    longer holds).
    """
    on = F.col("business_date")
    in_run = on.isin([F.lit(d) for d in sorted(set(days))])
    today = open_exceptions.where(in_run).select(*EXCEPTION_COLUMNS)
    yesterday = open_exceptions.withColumn("business_date", F.date_add(on, 1)).where(in_run)
    keys = ["business_date", "exception_id"]
    closed = yesterday.join(today.select(*keys), keys, "left_anti")
    matched_records = (
        matches.where(in_run)
        .select(
            "business_date",
            "recon",
            F.explode(F.concat("left_records", "right_records")).alias("record"),
        )
        .distinct()
        .withColumn("_matched", F.lit(1))
    )
    all_matched = (
        closed.select(*keys, "recon", F.explode("records").alias("record"))
        .join(matched_records, ["business_date", "recon", "record"], "left")
        .groupBy(*keys)
        .agg(F.min(F.coalesce("_matched", F.lit(0))).alias("_all_matched"))
    )
    resolution = (
        F.when(F.col("_all_matched") == 1, F.lit("matched"))
        .when(F.col("first_seen_date") < F.date_sub(on, lookback_days), F.lit("aged_out"))
        .otherwise(F.lit("superseded"))
    )
    closed_rows = (
        closed.join(all_matched, keys, "left")
        .withColumn("status", F.lit("closed"))
        .withColumn("resolution", resolution)
        .withColumn("closed_on", on)
        .withColumn("age_days", F.datediff(on, F.col("first_seen_date")).cast("int"))
        .select(*EXCEPTION_COLUMNS)
    )
    return today.unionByName(closed_rows)


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
