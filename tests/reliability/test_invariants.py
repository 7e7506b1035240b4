"""The invariant checks themselves: each one finds the violation it exists for.

Tables are written directly (no pipeline step), so the lakehouse can be put in states the
pipeline must never produce.
"""

from datetime import UTC, date, datetime

from infra import wap
from infra.lakehouse import LakehouseResource, TableRef
from tests.gold_helpers import SCHEMA, line
from tests.reliability.invariants import (
    duplicate_keys,
    lost_rows,
    unvalidated_publishes,
    violations,
)
from transforms.frames import local_frame

DAY = date(2026, 3, 31)


def _write(spark, lakehouse, table, rows, schema, extra=None):
    lakehouse.write_dates(local_frame(spark, rows, schema), table, [DAY], extra)


def test_each_invariant_finds_its_violation(spark, tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path))
    roster = "employee_id string, name string, business_date date"
    _write(spark, lakehouse, TableRef("bronze", "hris_roster"), [("E1", "a", DAY)] * 3, roster)
    _write(spark, lakehouse, TableRef("silver", "hris_roster"), [("E1", "a", DAY)] * 2, roster)
    assert lost_rows(spark, lakehouse) == [
        f"hris_roster {DAY}: bronze 3 != silver 2 + quarantine 0"
    ]
    assert duplicate_keys(spark, lakehouse) == [
        f"silver.hris_roster {DAY}: key ('E1',) appears 2 times"
    ]

    # Gold written behind the gate's back, then a publish the ledger records without an audit.
    gold = wap.GoldTable("expense_lines")
    _write(spark, lakehouse, gold.gold, [line(0, DAY)], SCHEMA)
    assert unvalidated_publishes(spark, lakehouse) == [
        "gold.expense_lines version 1 (WRITE) was not published through write-audit-publish"
    ]
    _write(spark, lakehouse, gold.staging, [line(0, DAY)], SCHEMA)
    lakehouse.append(
        local_frame(
            spark,
            [("expense_lines", DAY, "published", 1, True, None, 1, "r", datetime.now(UTC))],
            "table string, business_date date, event string, staged_version long, passed "
            "boolean, rules_failed string, gold_version long, run_id string, at timestamp",
        ),
        wap.WAP_LEDGER,
        False,
    )
    assert unvalidated_publishes(spark, lakehouse) == [
        f"gold.expense_lines {DAY} version 1 published staged version 1 without a passing "
        "audit of it"
    ]
    assert len(violations(spark, lakehouse)) == 3
