"""Expense lines through the generic source path: every rejection rule, deduplication and the
silver shape, on tiny inline data."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from transforms.contracts import EXPENSE_LINES
from transforms.frames import local_frame
from transforms.ingest import with_ingestion_metadata
from transforms.quarantine import quarantined_rows
from transforms.sources import classify_source, silver_source

BUSINESS_DATE = date(2026, 3, 31)
GOOD = {
    "report_id": "ER-1",
    "line_id": "1",
    "employee_id": "E00001",
    "transaction_date": "2026-03-30",
    "merchant": "Uber",
    "amount": "23.50",
    "currency": "usd",
    "claimed_category": "ground_transport",
    "justification": "Taxi to the client.",
    "_corrupt_record": None,
}


def bronze(spark: SparkSession, *rows: dict, source_file: str = "file:/landing/a.csv"):
    """Bronze rows built the way ingestion builds them."""
    columns = [*EXPENSE_LINES.column_names, "_corrupt_record"]
    data = [(*tuple(row.get(c) for c in columns), source_file) for row in rows]
    df = local_frame(spark, data, ", ".join(f"{c} string" for c in [*columns, "_source_file"]))
    return df.transform(with_ingestion_metadata(EXPENSE_LINES, BUSINESS_DATE, datetime(2026, 4, 1)))


def classify_expense_rows(business_date: date):
    return classify_source(EXPENSE_LINES)


def silver_expense_lines(classified):
    return classified.transform(silver_source(EXPENSE_LINES))


def quarantined_expense_lines(classified):
    return classified.transform(quarantined_rows(EXPENSE_LINES))


def verdicts(spark: SparkSession, *rows: dict) -> dict[str, str | None]:
    classified = bronze(spark, *rows).transform(classify_expense_rows(BUSINESS_DATE))
    return {
        f"{r['report_id']}|{r['line_id']}": r["_reason_code"]
        for r in classified.select("report_id", "line_id", "_reason_code").collect()
    }


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, None),
        ({"_corrupt_record": "ER-1,1,E1"}, "MALFORMED_RECORD"),
        ({"employee_id": None}, "MISSING_REQUIRED_FIELD"),
        ({"merchant": "   "}, "MISSING_REQUIRED_FIELD"),
        ({"amount": "12,5O"}, "INVALID_AMOUNT"),
        ({"amount": "N/A"}, "INVALID_AMOUNT"),
        ({"amount": "0"}, "AMOUNT_OUT_OF_RANGE"),
        ({"amount": "-20.00"}, "AMOUNT_OUT_OF_RANGE"),
        ({"amount": "100000.01"}, "AMOUNT_OUT_OF_RANGE"),
        ({"amount": "100000.00"}, None),
        ({"currency": "US$"}, "INVALID_CURRENCY"),
        ({"currency": " eur "}, None),
        ({"transaction_date": "2026-02-30"}, "INVALID_DATE"),
        ({"transaction_date": "31/03/2026"}, "INVALID_DATE"),
        ({"transaction_date": "2026-04-01"}, "DATE_OUT_OF_RANGE"),
        ({"transaction_date": "2025-03-30"}, "DATE_OUT_OF_RANGE"),
        ({"transaction_date": "2025-03-31"}, None),
        ({"line_id": "one"}, "INVALID_NUMBER"),
        ({"line_id": "0"}, "INVALID_LINE_ID"),
        ({"claimed_category": None, "justification": None}, None),
    ],
)
def test_each_rule_rejects_with_its_reason(spark, change, reason):
    row = {**GOOD, **change}
    assert verdicts(spark, row) == {f"{row['report_id']}|{row['line_id']}": reason}


def test_first_failing_rule_names_the_reason(spark):
    # Type rules in the contract's column order (transaction_date before amount), then currency.
    row = {**GOOD, "amount": "abc", "currency": "XXX", "transaction_date": "never"}
    assert verdicts(spark, row) == {"ER-1|1": "INVALID_DATE"}
    row = {**GOOD, "amount": "abc", "currency": "XXX"}
    assert verdicts(spark, row) == {"ER-1|1": "INVALID_AMOUNT"}


def test_duplicate_business_key_keeps_one_row_and_quarantines_the_rest(spark):
    same_key_other_amount = {**GOOD, "amount": "99.00"}
    classified = bronze(spark, GOOD, GOOD, same_key_other_amount).transform(
        classify_expense_rows(BUSINESS_DATE)
    )
    reasons = sorted(r["_reason_code"] or "kept" for r in classified.collect())
    assert reasons == ["DUPLICATE_KEY", "DUPLICATE_KEY", "kept"]
    # The kept row is chosen by a total order: the same on every run.
    kept = classified.where("_reason_code IS NULL").select("amount").collect()
    again = (
        bronze(spark, same_key_other_amount, GOOD, GOOD)
        .transform(classify_expense_rows(BUSINESS_DATE))
        .where("_reason_code IS NULL")
        .select("amount")
        .collect()
    )
    assert kept == again


def test_a_bad_row_does_not_take_the_key_from_a_good_one(spark):
    bad_copy = {**GOOD, "amount": "oops"}
    assert sorted(
        bronze(spark, bad_copy, GOOD)
        .transform(classify_expense_rows(BUSINESS_DATE))
        .select("_reason_code")
        .collect(),
        key=str,
    ) == sorted([("INVALID_AMOUNT",), (None,)], key=str)


def test_silver_rows_are_typed_and_trimmed(spark):
    classified = bronze(spark, {**GOOD, "merchant": " Uber "}).transform(
        classify_expense_rows(BUSINESS_DATE)
    )
    actual = silver_expense_lines(classified).drop("_source_file", "_row_hash")
    expected = local_frame(
        spark,
        [
            (
                "ER-1",
                1,
                "E00001",
                date(2026, 3, 30),
                "Uber",
                Decimal("23.50"),
                "USD",
                "ground_transport",
                "Taxi to the client.",
                BUSINESS_DATE,
            )
        ],
        "report_id string, line_id int, employee_id string, transaction_date date, "
        "merchant string, amount decimal(18,2), currency string, claimed_category string, "
        "justification string, business_date date",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_quarantine_keeps_the_raw_record_and_reason(spark):
    classified = bronze(spark, {**GOOD, "amount": "N/A"}).transform(
        classify_expense_rows(BUSINESS_DATE)
    )
    rows = quarantined_expense_lines(classified).collect()
    assert len(rows) == 1
    row = rows[0]
    assert (row["source"], row["reason_code"], row["record_key"]) == (
        "expense_lines",
        "INVALID_AMOUNT",
        "ER-1|1",
    )
    assert row["reason_detail"] == "amount is not a valid decimal(18,2): N/A"
    assert '"amount":"N/A"' in row["raw_record"]
    assert row["_source_file"] == "file:/landing/a.csv"


def test_rows_are_conserved(spark):
    rows = [GOOD, GOOD, {**GOOD, "line_id": "2", "amount": "x"}, {**GOOD, "line_id": "3"}]
    classified = bronze(spark, *rows).transform(classify_expense_rows(BUSINESS_DATE))
    silver = silver_expense_lines(classified).count()
    quarantine = quarantined_expense_lines(classified).count()
    assert (silver, quarantine) == (2, 2)
