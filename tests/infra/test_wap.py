"""Write-audit-publish: what passes reaches gold in one commit, what fails never does."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from infra import wap
from infra.lakehouse import LakehouseResource
from tests.gold_helpers import DAY, GOLD, SCHEMA, gate, line
from tests.reliability.invariants import unvalidated_publishes
from transforms.frames import local_frame


def gold_rows(spark, day: date | None = None):
    df = LakehouseResource().read(spark, GOLD.gold)
    if day is not None:
        df = df.where(F.col("business_date") == F.lit(day))
    return sorted(tuple(r) for r in df.collect())


def test_good_partition_publishes_in_one_commit_and_republishing_is_idempotent(
    spark, lakehouse_root
):
    report, versions = gate(spark, [line(i) for i in range(6)])
    assert report.passed and versions is not None
    first = gold_rows(spark)
    assert len(first) == 6
    _, again = gate(spark, [line(i) for i in range(6)])
    assert gold_rows(spark) == first
    assert again[1] == versions[1] + 1  # exactly one new commit: the replaceWhere overwrite
    ledger = LakehouseResource().read(spark, wap.WAP_LEDGER)
    assert ledger.where("event = 'published'").count() == 2


OTHER_DAY = DAY - timedelta(days=1)


@pytest.fixture(scope="module")
def published(spark, tmp_path_factory):
    """A lakehouse where DAY (6 lines) and the day before (3 lines) are already in gold."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_ROOT", str(tmp_path_factory.mktemp("published")))
        gate(spark, [line(i, OTHER_DAY) for i in range(3)], OTHER_DAY)
        gate(spark, [line(i) for i in range(6)])
        yield LakehouseResource()


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ({"report_id": None}, "report_id_not_null"),
        ({"currency": "US$"}, "currency_is_iso"),
        ({"spend_category": "yachts"}, "spend_category_in_taxonomy"),
        (
            {"justification_summary": "Call jane.doe@example.com today"},
            "summary_has_no_personal_data",
        ),
        ({"transaction_date": DAY + timedelta(days=3)}, "transaction_date_in_claim_window"),
    ],
)
def test_injected_violation_fails_its_rule_and_gold_is_untouched(spark, published, bad, rule):
    version_before = published.version(spark, GOLD.gold)
    content_before = gold_rows(spark)

    rows = [line(i) for i in range(6)]
    rows[4] = line(4, **bad)
    run_id = f"bad-{rule}"
    report, versions = gate(spark, rows, run_id=run_id)
    failed = {r.name for r in report.results if not r.success}
    assert rule in failed
    assert versions is None
    assert published.version(spark, GOLD.gold) == version_before
    assert gold_rows(spark) == content_before
    # The other date is unaffected, and the offending row is identifiable by its key.
    assert len(gold_rows(spark, OTHER_DAY)) == 3
    recorded = (
        published.read(spark, wap.VALIDATION_RESULTS)
        .where((F.col("run_id") == run_id) & (F.col("rule") == rule))
        .first()
    )
    assert recorded["success"] is False
    assert recorded["unexpected_count"] == 1
    keys = json.loads(recorded["offending_keys"])
    assert keys == [{"report_id": rows[4]["report_id"], "line_id": rows[4]["line_id"]}]


def test_a_row_of_another_date_cannot_even_be_staged(spark, lakehouse_root):
    rows = [line(0), line(1, business_date=OTHER_DAY)]
    with pytest.raises(Exception, match=r"(?i)replaceWhere|conform|match"):
        wap.stage(LakehouseResource(), local_frame(spark, rows, SCHEMA), GOLD, DAY)


def test_duplicate_key_is_reported_with_both_offending_rows(spark, lakehouse_root):
    rows = [line(i) for i in range(4)] + [line(1, input_hash="other")]
    report, published = gate(spark, rows)
    [dup] = [r for r in report.results if r.name == "line_key_unique"]
    assert not dup.success and published is None
    assert dup.offending_keys == [{"report_id": "ER-0", "line_id": 2}] * 2


def test_warn_rule_publishes_with_a_warning(spark, lakehouse_root):
    rows = [line(i) for i in range(10)]
    rows[0] = line(0, enrichment_status="failed", spend_category=None, error="refusal: no")
    rows[0]["failure_kind"] = "refusal"
    report, published = gate(spark, rows)
    failed = {(r.name, r.severity) for r in report.results if not r.success}
    assert failed == {("enriched_share", "warn"), ("refusal_and_truncation_rate", "warn")}
    assert published is not None


def test_publish_refuses_a_never_audited_or_failed_partition(spark, lakehouse_root):
    lakehouse = LakehouseResource()
    with pytest.raises(wap.PublishRefusedError, match="never audited"):
        wap.publish(lakehouse, spark, GOLD, DAY, "r")
    gate(spark, [line(0, currency="XXX")])
    with pytest.raises(wap.PublishRefusedError, match="failed its audit"):
        wap.publish(lakehouse, spark, GOLD, DAY, "r")


def test_constraints_refuse_a_violating_write_straight_to_gold(spark, lakehouse_root):
    gate(spark, [line(i) for i in range(3)])
    path = LakehouseResource().path(GOLD.gold)
    negative = local_frame(spark, [line(9, amount=Decimal("-5.00"))], SCHEMA)
    with pytest.raises(Exception, match=r"(?i)amount_in_range|CHECK constraint"):
        negative.write.format("delta").mode("append").save(path)
    no_currency = local_frame(spark, [line(9, currency=None)], SCHEMA)
    with pytest.raises(Exception, match=r"(?i)NOT NULL|currency"):
        no_currency.write.format("delta").mode("append").save(path)
    assert len(gold_rows(spark)) == 3


def test_restore_after_a_bad_manual_write(spark, lakehouse_root):
    """The runbook step in docs/RUNBOOK.md: RESTORE gold to the version before a bad write."""
    gate(spark, [line(i) for i in range(3)])
    lakehouse = LakehouseResource()
    good_version = lakehouse.version(spark, GOLD.gold)
    good = gold_rows(spark)
    # A manual fix gone wrong: every merchant overwritten (within the constraints).
    spark.sql("UPDATE gold.expense_lines SET merchant = 'oops'")
    assert gold_rows(spark) != good
    bad_version = lakehouse.version(spark, GOLD.gold)
    spark.sql(f"RESTORE TABLE gold.expense_lines TO VERSION AS OF {good_version}")
    assert gold_rows(spark) == good

    # The drill's end (issue 13, case 4): the next run publishes on top of the restored table,
    # time travel still shows the pre-incident content, and the only version of gold's history
    # that did not come through the gate is the manual write itself.
    _, published = gate(spark, [line(i, merchant="Lyft") for i in range(4)], run_id="next")
    assert published is not None
    assert {r[4] for r in gold_rows(spark)} == {"Lyft"} and len(gold_rows(spark)) == 4
    before = lakehouse.read(spark, GOLD.gold, good_version).collect()
    assert sorted(tuple(r) for r in before) == good
    assert unvalidated_publishes(spark, lakehouse) == [
        f"gold.expense_lines version {bad_version} (UPDATE) was not published through "
        "write-audit-publish"
    ]
