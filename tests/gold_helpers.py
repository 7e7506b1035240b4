"""Building gold-shaped expense lines and pushing them through the write-audit-publish gate."""

from datetime import date, timedelta
from decimal import Decimal

import great_expectations.expectations as gxe

from expectations.expense_lines import (
    CONSTRAINTS,
    NOT_NULL_COLUMNS,
    gold_expense_lines_suite,
)
from expectations.suite import ERROR, Rule, Suite
from infra import wap
from infra.lakehouse import LakehouseResource

DAY = date(2026, 3, 31)
GOLD = wap.GoldTable("expense_lines", not_null=NOT_NULL_COLUMNS, checks=tuple(CONSTRAINTS.items()))
SCHEMA = (
    "report_id string, line_id int, employee_id string, transaction_date date, merchant string, "
    "amount decimal(18,2), currency string, claimed_category string, justification string, "
    "spend_category string, confidence double, category_differs_from_claim boolean, "
    "justification_summary string, enrichment_status string, failure_kind string, source string, "
    "model string, prompt_version string, input_hash string, tokens_in int, tokens_out int, "
    "cost_usd double, attempts int, error string, latency_ms double, business_date date, "
    "_source_file string, _row_hash string"
)
# One rule is enough where the gate's mechanics are under test, not the expense suite (each rule
# costs GX time).
KEY_UNIQUE = Suite(
    "gate_mechanics",
    ("report_id", "line_id"),
    (
        Rule(
            "line_key_unique",
            ERROR,
            "One row per report line.",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["report_id", "line_id"]),
        ),
    ),
)


def line(i: int, day: date = DAY, **changes) -> dict:
    row = {
        "report_id": f"ER-{i // 3}",
        "line_id": i % 3 + 1,
        "employee_id": f"E{i:05d}",
        "transaction_date": day - timedelta(days=1),
        "merchant": "Uber",
        "amount": Decimal("23.50"),
        "currency": "USD",
        "claimed_category": "ground_transport",
        "justification": "Taxi to the client.",
        "spend_category": "ground_transport",
        "confidence": 0.9,
        "category_differs_from_claim": False,
        "justification_summary": "Taxi to the client.",
        "enrichment_status": "ok",
        "failure_kind": "none",
        "source": "model",
        "model": "embedded/test",
        "prompt_version": "expense-v1",
        "input_hash": f"h{i}",
        "tokens_in": 0,
        "tokens_out": 0,
        "cost_usd": 0.0,
        "attempts": 1,
        "error": None,
        "latency_ms": 0.1,
        "business_date": day,
        "_source_file": "file:/landing/a.csv",
        "_row_hash": f"r{i}",
    }
    row.update(changes)
    return row


def gate(spark, rows: list[dict], day: date = DAY, run_id: str = "run"):
    """Stage, audit and try to publish ``rows``; return (report, published versions or None)."""
    lakehouse = LakehouseResource()
    candidate = spark.createDataFrame(rows, SCHEMA)
    staged_version = wap.stage(lakehouse, candidate, GOLD, day)
    report = wap.audit(
        lakehouse, spark, GOLD, day, staged_version, gold_expense_lines_suite(day), run_id
    )
    try:
        return report, wap.publish(lakehouse, spark, GOLD, day, run_id)
    except wap.PublishRefusedError:
        return report, None


def stage_audited(spark, lakehouse: LakehouseResource, rows: list[dict], day: date = DAY) -> None:
    """Stage ``rows`` as ``day``'s candidate in one commit and audit it: what the staging step
    leaves for the publish, without the enrichment."""
    staged = wap.stage_dates(lakehouse, spark.createDataFrame(rows, SCHEMA), GOLD, [day])
    wap.audit_dates(lakehouse, spark, GOLD, [day], staged, gold_expense_lines_suite, "test")
