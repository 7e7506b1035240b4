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
"""

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

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


def _with_snapshot_sequence(snapshots: DataFrame) -> DataFrame:
    """Number the snapshot dates 1, 2, … (a small frame of dates, broadcast back)."""
    dates = snapshots.select("business_date").distinct()
    # One row per snapshot date: a single window partition is the right plan for so few rows.
    all_dates = Window.partitionBy(F.lit(0))
    numbered = dates.withColumn(
        "_seq", F.row_number().over(all_dates.orderBy("business_date"))
    ).withColumn("_last_seq", F.max("_seq").over(all_dates))
    return snapshots.join(F.broadcast(numbered), "business_date")


def hris_history(snapshots: DataFrame) -> DataFrame:
    """SCD type-2 versions of every employee from all silver ``hris_roster`` snapshots."""
    attribute_hash = F.sha2(F.to_json(F.struct(*TRACKED_ATTRIBUTES)), 256)
    per_employee = Window.partitionBy("employee_id").orderBy("business_date")
    starts_version = (
        F.lag("_hash").over(per_employee).isNull()
        | (F.lag("_hash").over(per_employee) != F.col("_hash"))
        | (F.lag("_seq").over(per_employee) != F.col("_seq") - 1)
    )
    rows = (
        snapshots.select("employee_id", "business_date", *TRACKED_ATTRIBUTES)
        .transform(_with_snapshot_sequence)
        .withColumn("_hash", attribute_hash)
        .withColumn("_starts", starts_version.cast("int"))
        .withColumn(
            "_version",
            F.sum("_starts").over(
                per_employee.rowsBetween(Window.unboundedPreceding, Window.currentRow)
            ),
        )
    )
    versions = rows.groupBy("employee_id", "_version", *TRACKED_ATTRIBUTES).agg(
        F.min("business_date").alias("valid_from"),
        F.max("business_date").alias("_last_seen"),
        F.min("_seq").alias("_first_seq"),
        F.max("_seq").alias("_end_seq"),
        F.max("_last_seq").alias("_last_seq"),
    )
    next_version = Window.partitionBy("employee_id").orderBy("_version")
    follows_on = F.lead("_first_seq").over(next_version) == F.col("_end_seq") + 1
    is_current = F.col("_end_seq") == F.col("_last_seq")
    valid_to = (
        F.when(is_current, F.lit(None).cast("date"))
        .when(follows_on, F.date_sub(F.lead("valid_from").over(next_version), 1))
        .otherwise(F.col("_last_seen"))
    )
    return versions.select(
        "employee_id",
        *TRACKED_ATTRIBUTES,
        "valid_from",
        valid_to.alias("valid_to"),
        is_current.alias("is_current"),
    )


def active_on(history: DataFrame, day: date) -> DataFrame:
    """Versions valid on ``day`` whose status is active (one per employee on the roster)."""
    valid = (F.col("valid_from") <= F.lit(day)) & (
        F.col("valid_to").isNull() | (F.col("valid_to") >= F.lit(day))
    )
    return history.where(valid & (F.lower(F.col("status")) == "active"))
