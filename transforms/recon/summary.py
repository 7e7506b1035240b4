"""The close summary: one row per (legal entity, recon) for a business date.

``close_summary_dates`` summarizes every date of a run in one plan: each date's rows only ever
meet rows of the same ``business_date``.

Counts, amounts and ages of the night's matches and exceptions, and for ``ap_gl`` the AP subledger
and GL control balances with the part of their difference no open exception explains.

Choices the spec leaves open:

- Rows for every entity of ``reference_data.LEGAL_ENTITIES`` plus any other entity present in the
  inputs (e.g. ``GROUP`` for expense policy), times every recon of ``RECONS``; zeros when nothing.
- ``open_by_type`` holds only the types with open exceptions (empty map when none);
  ``open_by_age`` always holds all five buckets (``AGE_BUCKETS``), zeros included.
- ``ap_balances`` may hold several currencies of one entity: the row in the entity's functional
  currency is used (for an entity not in reference data, the first currency alphabetically), and
  only open ``ap_gl`` exceptions in that currency count against its variance. An entity with no
  balance row has null AP columns.
"""

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, dates_frame
from transforms.recon.common import RECONS
from transforms.reference_data import LEGAL_ENTITIES

AP_RECON = "ap_gl"
AGE_BUCKETS = ("0", "1-2", "3-7", "8-30", "31+")

CLOSE_SUMMARY_COLUMNS = [
    "business_date",  # date
    "legal_entity",  # string
    "recon",  # string: one of RECONS
    "records_matched",  # bigint: distinct records in the night's matches
    "records_unmatched",  # bigint: distinct records in open exceptions
    "match_rate",  # double: matched / (matched + unmatched); null when both are 0
    "matched_amount_usd",  # decimal(18,2): Σ amount_usd of the matches
    "open_exceptions",  # bigint
    "open_amount_usd",  # decimal(18,2): Σ |amount_usd| of open exceptions
    "closed_today",  # bigint: exceptions closed on the business date
    "open_by_type",  # map<string,int>: open exceptions per exception_type
    "open_by_age",  # map<string,int>: open exceptions per AGE_BUCKETS bucket, all buckets
    "oldest_open_age_days",  # int: null when nothing is open
    "ap_subledger_balance",  # decimal(18,2): ap_gl rows only, entity currency
    "ap_gl_balance",  # decimal(18,2): ap_gl rows only
    "ap_variance",  # decimal(18,2): ap_gl rows only, subledger − GL
    "ap_variance_unexplained",  # decimal(18,2): ap_gl rows only, variance − Σ open ap_gl amounts
]

DAY = "business_date"
KEY = [DAY, "legal_entity", "recon"]


def _zero_usd() -> Column:
    return F.lit(0).cast("decimal(18,2)")


def age_bucket(age_days: Column) -> Column:
    """The ``AGE_BUCKETS`` label of an age in days."""
    return (
        F.when(age_days <= 0, F.lit("0"))
        .when(age_days <= 2, F.lit("1-2"))
        .when(age_days <= 7, F.lit("3-7"))
        .when(age_days <= 30, F.lit("8-30"))
        .otherwise(F.lit("31+"))
    )


def _grid(
    exceptions: DataFrame, matches: DataFrame, ap_balances: DataFrame, days: list[date]
) -> DataFrame:
    """Every (date, entity, recon): reference entities plus any entity present in the inputs of
    that date."""
    spark = exceptions.sparkSession
    known = dates_frame(spark, days).select(
        F.col(AS_OF).alias(DAY),
        F.explode(F.array(*[F.lit(code) for code in LEGAL_ENTITIES])).alias("legal_entity"),
    )
    present = (
        exceptions.select(DAY, "legal_entity")
        .unionByName(matches.select(DAY, "legal_entity"))
        .unionByName(ap_balances.select(DAY, "legal_entity"))
        .where(F.col("legal_entity").isNotNull())
    )
    recons = spark.range(1).select(F.explode(F.array(*map(F.lit, RECONS))).alias("recon"))
    return known.unionByName(present).distinct().crossJoin(F.broadcast(recons))


def _match_figures(matches: DataFrame) -> DataFrame:
    records = (
        matches.select(*KEY, F.explode(F.concat("left_records", "right_records")).alias("_record"))
        .groupBy(*KEY)
        .agg(F.countDistinct("_record").alias("records_matched"))
    )
    amounts = matches.groupBy(*KEY).agg(F.sum("amount_usd").alias("matched_amount_usd"))
    return amounts.join(records, KEY, "full")


def _open_figures(open_exceptions: DataFrame) -> DataFrame:
    bucket = age_bucket(F.col("age_days"))
    per_bucket = [
        F.count(F.when(bucket == label, F.lit(1))).cast("int").alias(f"_age_{i}")
        for i, label in enumerate(AGE_BUCKETS)
    ]
    totals = open_exceptions.groupBy(*KEY).agg(
        F.count(F.lit(1)).alias("open_exceptions"),
        F.sum(F.abs("amount_usd")).alias("open_amount_usd"),
        F.max("age_days").cast("int").alias("oldest_open_age_days"),
        *per_bucket,
    )
    records = (
        open_exceptions.select(*KEY, F.explode("records").alias("_record"))
        .groupBy(*KEY)
        .agg(F.countDistinct("_record").alias("records_unmatched"))
    )
    by_type = (
        open_exceptions.groupBy(*KEY, "exception_type")
        .agg(F.count(F.lit(1)).cast("int").alias("_n"))
        .groupBy(*KEY)
        .agg(
            F.map_from_entries(
                F.array_sort(F.collect_list(F.struct("exception_type", "_n")))
            ).alias("open_by_type")
        )
    )
    return totals.join(records, KEY, "full").join(by_type, KEY, "full")


def _ap_figures(ap_balances: DataFrame, open_exceptions: DataFrame) -> DataFrame:
    functional = F.create_map(
        *[
            part
            for code, e in sorted(LEGAL_ENTITIES.items())
            for part in (F.lit(code), F.lit(e.currency))
        ]
    )
    preferred = Window.partitionBy(DAY, "legal_entity").orderBy(
        (
            F.col("currency")
            != F.coalesce(F.try_element_at(functional, F.col("legal_entity")), F.lit(""))
        ),
        "currency",
    )
    balances = (
        ap_balances.withColumn("_rank", F.row_number().over(preferred))
        .where(F.col("_rank") == 1)
        .select(
            DAY, "legal_entity", "currency", "ap_subledger_balance", "ap_gl_balance", "ap_variance"
        )
    )
    explained = (
        open_exceptions.where(F.col("recon") == AP_RECON)
        .groupBy(DAY, "legal_entity", "currency")
        .agg(F.sum("amount").alias("_explained"))
    )
    return balances.join(explained, [DAY, "legal_entity", "currency"], "left").select(
        DAY,
        "legal_entity",
        F.lit(AP_RECON).alias("recon"),
        "ap_subledger_balance",
        "ap_gl_balance",
        "ap_variance",
        (F.col("ap_variance") - F.coalesce("_explained", _zero_usd())).alias(
            "ap_variance_unexplained"
        ),
    )


def close_summary(
    exceptions: DataFrame, matches: DataFrame, ap_balances: DataFrame, as_of: date
) -> DataFrame:
    """The close summary of ``as_of`` in ``CLOSE_SUMMARY_COLUMNS`` order, sorted by entity, recon.

    ``exceptions`` / ``matches``: gold rows of ``as_of`` (other dates are ignored);
    ``ap_balances``: legal_entity, currency, ap_subledger_balance, ap_gl_balance, ap_variance (the
    balances of ``as_of``; with a ``business_date`` column, other dates are ignored).
    """
    if DAY not in ap_balances.columns:
        ap_balances = ap_balances.withColumn(DAY, F.lit(as_of))
    return close_summary_dates(exceptions, matches, ap_balances, [as_of])


def close_summary_dates(
    exceptions: DataFrame, matches: DataFrame, ap_balances: DataFrame, days: list[date]
) -> DataFrame:
    """The close summary of each date of ``days`` in ``CLOSE_SUMMARY_COLUMNS`` order, sorted by
    date, entity, recon: each date's rows are ``close_summary`` of that date.

    ``exceptions`` / ``matches``: gold rows (other dates than ``days`` are ignored);
    ``ap_balances``: business_date, legal_entity, currency, ap_subledger_balance, ap_gl_balance,
    ap_variance (each date's balances).
    """
    on_days = F.col(DAY).isin([F.lit(d) for d in sorted(set(days))])
    exceptions = exceptions.where(on_days)
    matches = matches.where(on_days)
    ap_balances = ap_balances.where(on_days)
    open_exceptions = exceptions.where(F.col("status") == "open")
    closed = (
        exceptions.where((F.col("status") == "closed") & (F.col("closed_on") == F.col(DAY)))
        .groupBy(*KEY)
        .agg(F.count(F.lit(1)).alias("closed_today"))
    )
    joined = (
        _grid(exceptions, matches, ap_balances, days)
        .join(_match_figures(matches), KEY, "left")
        .join(_open_figures(open_exceptions), KEY, "left")
        .join(closed, KEY, "left")
        .join(_ap_figures(ap_balances, open_exceptions), KEY, "left")
    )
    matched = F.coalesce("records_matched", F.lit(0)).cast("bigint")
    unmatched = F.coalesce("records_unmatched", F.lit(0)).cast("bigint")
    ages = [
        part
        for i, label in enumerate(AGE_BUCKETS)
        for part in (F.lit(label), F.coalesce(F.col(f"_age_{i}"), F.lit(0)).cast("int"))
    ]
    return (
        joined.select(
            F.col(DAY).cast("date").alias("business_date"),
            "legal_entity",
            "recon",
            matched.alias("records_matched"),
            unmatched.alias("records_unmatched"),
            F.when(matched + unmatched > 0, F.try_divide(matched, matched + unmatched))
            .cast("double")
            .alias("match_rate"),
            F.coalesce("matched_amount_usd", _zero_usd())
            .cast("decimal(18,2)")
            .alias("matched_amount_usd"),
            F.coalesce("open_exceptions", F.lit(0)).cast("bigint").alias("open_exceptions"),
            F.coalesce("open_amount_usd", _zero_usd())
            .cast("decimal(18,2)")
            .alias("open_amount_usd"),
            F.coalesce("closed_today", F.lit(0)).cast("bigint").alias("closed_today"),
            F.coalesce("open_by_type", F.create_map().cast("map<string,int>")).alias(
                "open_by_type"
            ),
            F.create_map(*ages).alias("open_by_age"),
            F.col("oldest_open_age_days").cast("int").alias("oldest_open_age_days"),
            *[
                F.col(c).cast("decimal(18,2)").alias(c)
                for c in (
                    "ap_subledger_balance",
                    "ap_gl_balance",
                    "ap_variance",
                    "ap_variance_unexplained",
                )
            ],
        )
        .orderBy(*KEY)
        .select(*CLOSE_SUMMARY_COLUMNS)
    )
