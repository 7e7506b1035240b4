"""HRIS roster history: daily full snapshots folded into SCD type-2 versions.

A version is a run of consecutive snapshots in which an employee's tracked attributes stay the
same. Names and e-mails are personal data and not tracked: the history never holds them.

- ``valid_from``: the first snapshot date of the run.
- ``valid_to``: the day before the next version's ``valid_from`` when the next version follows
  straight on; the last date the employee was seen when they then leave the roster (a leaver, or a
  gap before they reappear, which starts a new version); null while current.
- ``is_current``: the version present in the newest snapshot.

"Consecutive" is over the snapshot dates present, not the calendar, so a missing snapshot day does
not split every employee's history.

``hris_history_dates`` folds the history as known on each date of a run (the snapshots up to it)
in one plan: each snapshot row is copied once per as-of date that sees it, and every window and
grouping of the fold includes the as-of date.
"""

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from transforms.as_of import AS_OF, as_of_dates

TRACKED_ATTRIBUTES = [
    "legal_entity",
    "department",
    "cost_centre",
    "title",
    "location",
    "status",
    "manager_id",
    "annual_salary",
    "currency",
    "termination_date",
    "hire_date",
]

HRIS_HISTORY_COLUMNS = [
    "employee_id",
    *TRACKED_ATTRIBUTES,
    "valid_from",
    "valid_to",
    "is_current",
]


def _with_snapshot_sequence(snapshots: DataFrame, by: list[str]) -> DataFrame:
    """Number the snapshot dates 1, 2, … per ``by`` (a small frame of dates, broadcast back)."""
    dates = snapshots.select(*by, "business_date").distinct()
    # A few rows per ``by``: one window partition per as-of date (or one in all) is the right plan.
    all_dates = Window.partitionBy(*(by or [F.lit(0)]))
    numbered = dates.withColumn(
        "_seq", F.row_number().over(all_dates.orderBy("business_date"))
    ).withColumn("_last_seq", F.max("_seq").over(all_dates))
    return snapshots.join(F.broadcast(numbered), [*by, "business_date"])


def _fold(snapshots: DataFrame, by: list[str]) -> DataFrame:
    """SCD type-2 versions per ``by`` (e.g. the as-of date), ``by`` columns first."""
    attribute_hash = F.sha2(F.to_json(F.struct(*TRACKED_ATTRIBUTES)), 256)
    per_employee = Window.partitionBy(*by, "employee_id").orderBy("business_date")
    starts_version = (
        F.lag("_hash").over(per_employee).isNull()
        | (F.lag("_hash").over(per_employee) != F.col("_hash"))
        | (F.lag("_seq").over(per_employee) != F.col("_seq") - 1)
    )
    rows = (
        snapshots.select(*by, "employee_id", "business_date", *TRACKED_ATTRIBUTES)
        .transform(lambda df: _with_snapshot_sequence(df, by))
        .withColumn("_hash", attribute_hash)
        .withColumn("_starts", starts_version.cast("int"))
        .withColumn(
            "_version",
            F.sum("_starts").over(
                per_employee.rowsBetween(Window.unboundedPreceding, Window.currentRow)
            ),
        )
    )
    versions = rows.groupBy(*by, "employee_id", "_version", *TRACKED_ATTRIBUTES).agg(
        F.min("business_date").alias("valid_from"),
        F.max("business_date").alias("_last_seen"),
        F.min("_seq").alias("_first_seq"),
        F.max("_seq").alias("_end_seq"),
        F.max("_last_seq").alias("_last_seq"),
    )
    next_version = Window.partitionBy(*by, "employee_id").orderBy("_version")
    follows_on = F.lead("_first_seq").over(next_version) == F.col("_end_seq") + 1
    is_current = F.col("_end_seq") == F.col("_last_seq")
    valid_to = (
        F.when(is_current, F.lit(None).cast("date"))
        .when(follows_on, F.date_sub(F.lead("valid_from").over(next_version), 1))
        .otherwise(F.col("_last_seen"))
    )
    return versions.select(
        *by,
        "employee_id",
        *TRACKED_ATTRIBUTES,
        "valid_from",
        valid_to.alias("valid_to"),
        is_current.alias("is_current"),
    )


def hris_history(snapshots: DataFrame) -> DataFrame:
    """SCD type-2 versions of every employee from all silver ``hris_roster`` snapshots."""
    return _fold(snapshots, [])


def hris_history_dates(snapshots: DataFrame, days: list[date]) -> DataFrame:
    """The history as known on each date ``D`` of ``days``: ``hris_history`` of the snapshots up to
    ``D``, with ``business_date`` = ``D`` (``HRIS_HISTORY_COLUMNS`` then ``business_date``)."""
    known = _fold(as_of_dates(snapshots, days, None), [AS_OF])
    return known.select(*HRIS_HISTORY_COLUMNS, F.col(AS_OF).alias("business_date"))


def active_on(history: DataFrame, day: date) -> DataFrame:
    """Versions valid on ``day`` whose status is active (one per employee on the roster)."""
    valid = (F.col("valid_from") <= F.lit(day)) & (
        F.col("valid_to").isNull() | (F.col("valid_to") >= F.lit(day))
    )
    return history.where(valid & (F.lower(F.col("status")) == "active"))
