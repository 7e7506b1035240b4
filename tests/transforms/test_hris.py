"""HRIS history: versions from daily snapshots, leavers, determinism and ``active_on``."""

from datetime import date, timedelta
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from transforms.frames import local_frame
from transforms.hris import HRIS_HISTORY_COLUMNS, active_on, hris_history, hris_history_dates

D1 = date(2026, 11, 2)

SCHEMA = (
    "employee_id string, name string, email string, legal_entity string, department string, "
    "cost_centre string, title string, location string, hire_date date, termination_date date, "
    "status string, manager_id string, annual_salary decimal(18,2), currency string, "
    "business_date date"
)
NAMES = [c.split()[0] for c in SCHEMA.split(", ")]
HISTORY_SCHEMA = (
    "employee_id string, legal_entity string, department string, cost_centre string, "
    "title string, location string, status string, manager_id string, "
    "annual_salary decimal(18,2), currency string, termination_date date, hire_date date, "
    "valid_from date, valid_to date, is_current boolean"
)


def day(n: int) -> date:
    return D1 + timedelta(days=n - 1)


def snapshot_row(employee_id: str, n: int, **change) -> dict:
    """Employee ``employee_id`` in the snapshot of day ``n`` (1-based)."""
    return {
        "employee_id": employee_id,
        "name": "Jane Doe",
        "email": "jane@example.com",
        "legal_entity": "US01",
        "department": "Finance",
        "cost_centre": "CC-100",
        "title": "Analyst",
        "location": "NYC",
        "hire_date": date(2024, 1, 1),
        "termination_date": None,
        "status": "active",
        "manager_id": None,
        "annual_salary": Decimal("48000.00"),
        "currency": "USD",
        "business_date": day(n),
        **change,
    }


def snapshots(spark: SparkSession, rows: list[dict]):
    return local_frame(spark, [tuple(r[n] for n in NAMES) for r in rows], SCHEMA)


def version(employee_id: str, valid_from: date, valid_to: date | None, current: bool, **change):
    row = snapshot_row(employee_id, 1, **change)
    values = {**row, "valid_from": valid_from, "valid_to": valid_to, "is_current": current}
    return tuple(values[c] for c in HRIS_HISTORY_COLUMNS)


def history_of(spark, rows: list[dict]):
    return hris_history(snapshots(spark, rows)).orderBy("employee_id", "valid_from")


def test_change_starts_a_new_version_and_unchanged_days_collapse(spark):
    rows = [snapshot_row("E1", n) for n in (1, 2, 3)]
    rows += [snapshot_row("E1", n, title="Senior Analyst") for n in (4, 5)]
    # Same attributes back again later: a third version, not a merge with the first.
    rows += [snapshot_row("E1", 6)]
    expected = local_frame(
        spark,
        [
            version("E1", day(1), day(3), False),
            version("E1", day(4), day(5), False, title="Senior Analyst"),
            version("E1", day(6), None, True),
        ],
        HISTORY_SCHEMA,
    )
    assert_df_equality(history_of(spark, rows), expected, ignore_nullable=True)


def test_null_to_value_is_a_change(spark):
    rows = [snapshot_row("E1", 1), snapshot_row("E1", 2, manager_id="E9")]
    result = history_of(spark, rows).select("manager_id", "valid_from", "valid_to").collect()
    assert [tuple(r) for r in result] == [(None, day(1), day(1)), ("E9", day(2), None)]


def test_names_and_emails_do_not_make_versions_or_reach_history(spark):
    rows = [snapshot_row("E1", 1), snapshot_row("E1", 2, name="Jane Smith", email="js@x.com")]
    result = history_of(spark, rows)
    assert result.columns == HRIS_HISTORY_COLUMNS
    assert result.count() == 1


def test_leaver_ends_on_the_last_day_seen(spark):
    rows = [snapshot_row("E1", n) for n in (1, 2, 3)]
    rows += [snapshot_row("E2", n) for n in (1, 2)]  # left the roster after day 2
    # Gone on day 3, back on day 4 with the same attributes: a new version.
    rows += [snapshot_row("E3", n) for n in (1, 2, 4)]
    rows += [snapshot_row("E1", 4)]
    expected = local_frame(
        spark,
        [
            version("E1", day(1), None, True),
            version("E2", day(1), day(2), False),
            version("E3", day(1), day(2), False),
            version("E3", day(4), None, True),
        ],
        HISTORY_SCHEMA,
    )
    assert_df_equality(history_of(spark, rows), expected, ignore_nullable=True)


def test_a_missing_snapshot_day_does_not_split_history(spark):
    # No snapshot on day 2 or 3 (weekend): the change on day 4 ends the version on day 3.
    rows = [snapshot_row("E1", 1), snapshot_row("E1", 4, status="leave")]
    result = history_of(spark, rows).select("status", "valid_from", "valid_to").collect()
    assert [tuple(r) for r in result] == [("active", day(1), day(3)), ("leave", day(4), None)]


def test_deterministic_whatever_the_input_order(spark):
    rows = [snapshot_row("E1", n, title=f"T{n // 2}") for n in range(1, 6)]
    rows += [snapshot_row("E2", n) for n in range(1, 4)]
    forward = history_of(spark, rows)
    backward = history_of(spark, list(reversed(rows)))
    assert_df_equality(forward, backward)
    assert forward.count() == 4


def test_active_on_picks_the_version_valid_that_day(spark):
    rows = [snapshot_row("E1", n) for n in (1, 2)]
    rows += [snapshot_row("E1", n, status="terminated", termination_date=day(2)) for n in (3, 4)]
    rows += [snapshot_row("E2", n, status="leave") for n in (1, 2, 3, 4)]
    rows += [snapshot_row("E3", 1)]  # left after day 1
    history = hris_history(snapshots(spark, rows))

    def active(n: int) -> list[tuple]:
        return sorted(
            (r["employee_id"], r["valid_from"])
            for r in active_on(history, day(n)).select("employee_id", "valid_from").collect()
        )

    assert active(1) == [("E1", day(1)), ("E3", day(1))]
    assert active(2) == [("E1", day(1))]
    assert active(3) == []
    assert active(0) == []


# The per-date fold before it was set-based: (business_date, employee_id, title, valid_from,
# valid_to, is_current).
EXPECTED_KNOWN_ON = [
    (date(2026, 11, 3), "E1", "Analyst", date(2026, 11, 2), None, True),
    (date(2026, 11, 3), "E2", "Analyst", date(2026, 11, 2), None, True),
    (date(2026, 11, 3), "E3", "Analyst", date(2026, 11, 3), None, True),
    (date(2026, 11, 4), "E1", "Analyst", date(2026, 11, 2), date(2026, 11, 3), False),
    (date(2026, 11, 4), "E1", "Senior Analyst", date(2026, 11, 4), None, True),
    (date(2026, 11, 4), "E2", "Analyst", date(2026, 11, 2), None, True),
    (date(2026, 11, 4), "E3", "Analyst", date(2026, 11, 3), date(2026, 11, 3), False),
    (date(2026, 11, 5), "E1", "Analyst", date(2026, 11, 2), date(2026, 11, 3), False),
    (date(2026, 11, 5), "E1", "Senior Analyst", date(2026, 11, 4), None, True),
    (date(2026, 11, 5), "E2", "Analyst", date(2026, 11, 2), None, True),
    (date(2026, 11, 5), "E3", "Analyst", date(2026, 11, 3), date(2026, 11, 3), False),
    (date(2026, 11, 6), "E1", "Analyst", date(2026, 11, 2), date(2026, 11, 3), False),
    (date(2026, 11, 6), "E1", "Senior Analyst", date(2026, 11, 4), None, True),
    (date(2026, 11, 6), "E2", "Analyst", date(2026, 11, 2), date(2026, 11, 4), False),
    (date(2026, 11, 6), "E3", "Analyst", date(2026, 11, 3), date(2026, 11, 3), False),
    (date(2026, 11, 6), "E3", "Analyst", date(2026, 11, 6), None, True),
]


KNOWN_ON_FIELDS = ("business_date", "employee_id", "title", "valid_from", "valid_to", "is_current")


def test_history_as_known_on_several_dates_in_one_plan(spark):
    rows = [snapshot_row("E1", n) for n in (1, 2)]
    rows += [snapshot_row("E1", n, title="Senior Analyst") for n in (3, 5)]  # no snapshot day 4
    rows += [snapshot_row("E2", n) for n in (1, 2, 3)]  # leaves after day 3
    rows += [snapshot_row("E3", n, status="leave") for n in (2, 5)]  # away on day 3
    rows += [snapshot_row("E4", 6)]  # after the run's dates
    source = snapshots(spark, rows)
    days = [day(2), day(3), day(4), day(5)]
    together = hris_history_dates(source, days).localCheckpoint()
    assert together.columns == [*HRIS_HISTORY_COLUMNS, "business_date"]
    one_by_one = None
    for d in days:
        known = hris_history(source.where(F.col("business_date") <= F.lit(d)))
        known = known.withColumn("business_date", F.lit(d))
        one_by_one = known if one_by_one is None else one_by_one.unionByName(known)
    assert_df_equality(together, one_by_one, ignore_row_order=True, ignore_nullable=True)
    # Each date's history as the per-date fold gave it before it was set-based.
    versions = sorted(tuple(r[c] for c in KNOWN_ON_FIELDS) for r in together.collect())
    assert versions == EXPECTED_KNOWN_ON
