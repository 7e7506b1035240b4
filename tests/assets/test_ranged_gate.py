"""A run over several dates: one commit per table, a verdict per date, a bad date refused alone.

Gold-shaped expense lines go through ``wap.stage_dates`` / ``audit_dates`` / ``publish_dates``
directly, and the publish step through Dagster, so the per-partition status is what the UI shows.
"""

from datetime import timedelta

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from delta.tables import DeltaTable

from assets.expenses import gold_expense_lines
from expectations.expense_lines import gold_expense_lines_suite
from expectations.runner import validate, validate_dates
from infra import wap
from infra.lakehouse import LakehouseResource
from infra.spark import SparkResource
from tests.gold_helpers import DAY, GOLD, SCHEMA, line
from transforms.frames import local_frame

DAYS = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
BAD = DAYS[1]


def _rows(spark):
    """Ten lines a date; the middle date has a line in an unknown currency and a duplicate key."""
    rows = []
    for n, day in enumerate(DAYS):
        for i in range(10):
            changes = {"currency": "XXX"} if day == BAD and i == 3 else {}
            rows.append(line(i, day, input_hash=f"h{n}-{i}", **changes))
    rows.append(line(5, BAD, input_hash="dup"))
    return local_frame(spark, rows, SCHEMA)


def _verdicts(report) -> dict[str, tuple[bool, int | None]]:
    return {r.name: (r.success, r.unexpected_count) for r in report.results}


def test_validating_dates_together_gives_each_date_its_own_verdict(spark, lakehouse_root):
    df = _rows(spark).cache()
    together = validate_dates(df, gold_expense_lines_suite, DAYS)
    for day in DAYS:
        alone = validate(df.where(df.business_date == day), gold_expense_lines_suite(day))
        assert _verdicts(together[day]) == _verdicts(alone), day
        assert together[day].rows == alone.rows
    assert together[BAD].passed is False
    assert {r.name for r in together[BAD].results if not r.success} == {
        "currency_is_iso",
        "line_key_unique",
    }
    assert together[DAYS[0]].passed and together[DAYS[2]].passed
    # The failed rule's offending rows are named for the bad date only.
    [dup] = [r for r in together[BAD].results if r.name == "line_key_unique"]
    assert dup.offending_keys == [{"report_id": "ER-1", "line_id": 3}] * 2


def test_a_bad_date_is_refused_alone_and_the_others_publish_in_one_commit(spark, lakehouse_root):
    lakehouse = LakehouseResource()
    staged = wap.stage_dates(lakehouse, _rows(spark), GOLD, DAYS)
    reports = wap.audit_dates(
        lakehouse, spark, GOLD, DAYS, staged, gold_expense_lines_suite, "ranged"
    )
    assert [day for day in DAYS if not reports[day].passed] == [BAD]
    done = wap.publish_dates(lakehouse, spark, GOLD, DAYS, "ranged")
    assert list(done.refused) == [BAD] and "failed its audit" in done.refused[BAD]
    assert done.published_dates == [DAYS[0], DAYS[2]]
    gold = lakehouse.read(spark, GOLD.gold)
    assert {r[0] for r in gold.select("business_date").distinct().collect()} == {
        DAYS[0],
        DAYS[2],
    }
    assert gold.count() == 20 == done.rows
    # One gold commit writes both dates (the other creates the table with its constraints), and
    # the ledger has one event per date.
    writes = (
        DeltaTable.forPath(spark, lakehouse.path(GOLD.gold)).history().where("operation = 'WRITE'")
    )
    assert [r["version"] for r in writes.collect()] == [done.gold_version]
    ledger = lakehouse.read(spark, wap.WAP_LEDGER).where("event = 'published'").collect()
    assert sorted(r["business_date"] for r in ledger) == [DAYS[0], DAYS[2]]
    assert {r["gold_version"] for r in ledger} == {done.gold_version}


@pytest.mark.slow  # a Dagster materialize() of the publish step
def test_the_publish_step_marks_the_refused_date_failed_in_its_own_partition(spark, lakehouse_root):
    lakehouse = LakehouseResource()
    staged = wap.stage_dates(lakehouse, _rows(spark), GOLD, DAYS)
    wap.audit_dates(lakehouse, spark, GOLD, DAYS, staged, gold_expense_lines_suite, "ranged")
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [gold_expense_lines],
        instance=instance,
        resources={
            "spark": SparkResource(),
            "lakehouse": lakehouse,
        },
        tags={
            ASSET_PARTITION_RANGE_START_TAG: DAYS[0].isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: DAYS[-1].isoformat(),
        },
        raise_on_error=False,
    )
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert (
        BAD.isoformat()
        in failure.step_failure_data.user_failure_data.metadata["refused_dates"].text
    )
    key = AssetKey("gold_expense_lines")
    materialized = instance.get_materialized_partitions(key)
    assert materialized == {DAYS[0].isoformat(), DAYS[2].isoformat()}
    assert lakehouse.read(spark, GOLD.gold).count() == 20
