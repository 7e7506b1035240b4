"""Generic silver: contract rules, USD conversion, unbalanced journals, each source's own rules."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from transforms import contracts as c
from transforms.conform import day_rates
from transforms.frames import local_frame
from transforms.ingest import with_ingestion_metadata
from transforms.quarantine import quarantined_rows
from transforms.sources import classify_source, silver_source

DAY = date(2026, 11, 20)


def bronze(spark: SparkSession, contract: c.SourceContract, *rows: dict):
    columns = [*contract.column_names, "_corrupt_record", "_source_file"]
    data = [(*(row.get(col) for col in columns[:-1]), "file:/l/x") for row in rows]
    df = local_frame(spark, data, ", ".join(f"{col} string" for col in columns))
    return df.transform(with_ingestion_metadata(contract, DAY, datetime(2026, 11, 21)))


def rates(spark: SparkSession, **by_currency: str):
    fx = local_frame(
        spark,
        [(k, Decimal(v), DAY) for k, v in by_currency.items()],
        "currency string, rate_to_usd decimal(18,8), business_date date",
    )
    return day_rates(fx, DAY)


GL = {
    "journal_id": "JE-1",
    "line_number": "1",
    "legal_entity": "DE01",
    "posting_date": "2026-11-20",
    "account": "1010",
    "debit": "100.00",
    "credit": "0",
    "currency": "eur",
    "source_system": "AR",
    "reference": "RCPT-1",
}


def gl_pair(journal: str = "JE-1", debit: str = "100.00", credit: str = "100.00") -> list[dict]:
    return [
        {**GL, "journal_id": journal, "debit": debit, "credit": "0"},
        {
            **GL,
            "journal_id": journal,
            "line_number": "2",
            "account": "1200",
            "debit": "0",
            "credit": credit,
        },
    ]


def test_balanced_journal_is_converted_to_usd_at_the_days_rate(spark):
    classified = bronze(spark, c.GL_JOURNAL_LINES, *gl_pair()).transform(
        classify_source(c.GL_JOURNAL_LINES, rates(spark, EUR="1.10000000"))
    )
    silver = classified.transform(silver_source(c.GL_JOURNAL_LINES))
    actual = silver.select(
        "journal_id",
        "line_number",
        "currency",
        "debit_usd",
        "credit_usd",
        "signed_amount",
        "signed_amount_usd",
        "fx_rate_to_usd",
    )
    expected = local_frame(
        spark,
        [
            (
                "JE-1",
                1,
                "EUR",
                Decimal("110.00"),
                Decimal("0.00"),
                Decimal("100.00"),
                Decimal("110.00"),
                Decimal("1.1"),
            ),
            (
                "JE-1",
                2,
                "EUR",
                Decimal("0.00"),
                Decimal("110.00"),
                Decimal("-100.00"),
                Decimal("-110.00"),
                Decimal("1.1"),
            ),
        ],
        "journal_id string, line_number int, currency string, debit_usd decimal(18,2), "
        "credit_usd decimal(18,2), signed_amount decimal(18,2), signed_amount_usd decimal(18,2), "
        "fx_rate_to_usd decimal(18,8)",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_missing_rate_quarantines_instead_of_guessing(spark):
    classified = bronze(spark, c.GL_JOURNAL_LINES, *gl_pair()).transform(
        classify_source(c.GL_JOURNAL_LINES, rates(spark, GBP="1.27"))
    )
    codes = [r["_reason_code"] for r in classified.collect()]
    assert codes == ["MISSING_FX_RATE", "MISSING_FX_RATE"]
    assert classified.transform(silver_source(c.GL_JOURNAL_LINES)).count() == 0


def test_usd_needs_no_rate_file(spark):
    rows = [{**r, "currency": "USD"} for r in gl_pair()]
    classified = bronze(spark, c.GL_JOURNAL_LINES, *rows).transform(
        classify_source(c.GL_JOURNAL_LINES, rates(spark))
    )
    assert [r["_reason_code"] for r in classified.collect()] == [None, None]


def test_unbalanced_journal_rejects_every_line_of_it_and_only_it(spark):
    rows = [*gl_pair("JE-1", "100.00", "99.99"), *gl_pair("JE-2")]
    classified = bronze(spark, c.GL_JOURNAL_LINES, *rows).transform(
        classify_source(c.GL_JOURNAL_LINES, rates(spark, EUR="1.1"))
    )
    verdicts = {
        (r["journal_id"], r["line_number"]): r["_reason_code"] for r in classified.collect()
    }
    assert verdicts == {
        ("JE-1", "1"): "UNBALANCED_JOURNAL",
        ("JE-1", "2"): "UNBALANCED_JOURNAL",
        ("JE-2", "1"): None,
        ("JE-2", "2"): None,
    }
    quarantine = classified.transform(quarantined_rows(c.GL_JOURNAL_LINES))
    assert sorted(r["record_key"] for r in quarantine.collect()) == ["JE-1|1", "JE-1|2"]
    detail = quarantine.first()["reason_detail"]
    assert "JE-1 does not balance" in detail and "0.01" in detail


def test_a_journal_with_one_bad_line_is_rejected_whole(spark):
    rows = gl_pair()
    rows[1] = {**rows[1], "credit": "abc"}
    classified = bronze(spark, c.GL_JOURNAL_LINES, *rows).transform(
        classify_source(c.GL_JOURNAL_LINES, rates(spark, EUR="1.1"))
    )
    codes = sorted(r["_reason_code"] for r in classified.collect())
    assert codes == ["INVALID_AMOUNT", "UNBALANCED_JOURNAL"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"debit": "-5", "credit": "0"}, "AMOUNT_OUT_OF_RANGE"),
        ({"debit": "5", "credit": "5"}, "AMOUNT_OUT_OF_RANGE"),
        ({"posting_date": "20/11/2026"}, "INVALID_DATE"),
        ({"line_number": "one"}, "INVALID_NUMBER"),
        ({"currency": "EURO"}, "INVALID_CURRENCY"),
        ({"account": " "}, "MISSING_REQUIRED_FIELD"),
        ({"_corrupt_record": "JE-1,1"}, "MALFORMED_RECORD"),
    ],
)
def test_gl_line_rules(spark, change, reason):
    row = {**GL, "debit": "0", "credit": "0", **change}
    classified = bronze(spark, c.GL_JOURNAL_LINES, row).transform(
        classify_source(c.GL_JOURNAL_LINES, rates(spark, EUR="1.1"))
    )
    assert classified.first()["_reason_code"] == reason


def test_duplicate_business_key_keeps_one_copy(spark):
    row = {
        "bank_account": "US01-OPER-001",
        "statement_line_id": "S1",
        "value_date": "2026-11-20",
        "amount": "-10.00",
        "currency": "USD",
    }
    classified = bronze(spark, c.BANK_STATEMENT_LINES, row, dict(row)).transform(
        classify_source(c.BANK_STATEMENT_LINES, rates(spark))
    )
    assert sorted(str(r["_reason_code"]) for r in classified.collect()) == ["DUPLICATE_KEY", "None"]


def test_unknown_bank_account_is_quarantined(spark):
    row = {
        "bank_account": "XX-1",
        "statement_line_id": "S1",
        "value_date": "2026-11-20",
        "amount": "-10.00",
        "currency": "USD",
    }
    classified = bronze(spark, c.BANK_STATEMENT_LINES, row).transform(
        classify_source(c.BANK_STATEMENT_LINES, rates(spark))
    )
    assert classified.first()["_reason_code"] == "UNKNOWN_BANK_ACCOUNT"


PAY = {
    "payment_id": "P1",
    "pay_period_start": "2026-11-01",
    "pay_period_end": "2026-11-15",
    "employee_id": "EMP-1",
    "legal_entity": "US01",
    "gross": "1000.00",
    "taxes": "220.00",
    "deductions": "50.00",
    "net": "730.00",
    "currency": "USD",
    "pay_date": "2026-11-15",
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, None),
        ({"net": "730.01"}, None),
        ({"net": "731.00"}, "NET_MISMATCH"),
        ({"pay_period_end": "2026-10-31"}, "INVALID_PERIOD"),
    ],
)
def test_payroll_rules(spark, change, reason):
    classified = bronze(spark, c.PAYROLL_REGISTER, {**PAY, **change}).transform(
        classify_source(c.PAYROLL_REGISTER, rates(spark))
    )
    assert classified.first()["_reason_code"] == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, None),
        ({"rate_to_usd": "0"}, "INVALID_RATE"),
        ({"rate_date": "2026-11-19"}, "DATE_OUT_OF_RANGE"),
        ({"currency": "XYZ"}, "INVALID_CURRENCY"),
    ],
)
def test_fx_rules(spark, change, reason):
    row = {"rate_date": "2026-11-20", "currency": "eur", "rate_to_usd": "1.08", **change}
    classified = bronze(spark, c.FX_RATES, row).transform(classify_source(c.FX_RATES))
    assert classified.first()["_reason_code"] == reason
    if reason is None:
        assert classified.transform(silver_source(c.FX_RATES)).first()["currency"] == "EUR"


def test_hris_status_is_checked_and_normalised(spark):
    good = {"employee_id": "EMP-1", "name": "A B", "legal_entity": "US01", "status": "Active"}
    bad = {**good, "employee_id": "EMP-2", "status": "retired"}
    classified = bronze(spark, c.HRIS_ROSTER, good, bad).transform(classify_source(c.HRIS_ROSTER))
    verdicts = {r["employee_id"]: r["_reason_code"] for r in classified.collect()}
    assert verdicts == {"EMP-1": None, "EMP-2": "INVALID_STATUS"}
    silver = classified.transform(silver_source(c.HRIS_ROSTER))
    assert [r["status"] for r in silver.collect()] == ["active"]


def test_several_dates_classify_as_each_date_alone(spark):
    """A ranged run classifies its dates in one plan: the rates are the row's date's, a key may
    recur on another date, a journal balances within its date, the claim window is the date's."""
    from transforms.conform import rates_on

    later = date(2026, 11, 23)

    def on(day: date, contract: c.SourceContract, *rows: dict):
        return bronze(spark, contract, *rows).withColumn("business_date", F.lit(day))

    fx = local_frame(
        spark,
        [("EUR", Decimal("1.1"), DAY)],  # no EUR rate on the later date
        "currency string, rate_to_usd decimal(18,8), business_date date",
    )
    both = on(DAY, c.GL_JOURNAL_LINES, *gl_pair()).unionByName(
        on(later, c.GL_JOURNAL_LINES, *gl_pair(), {**GL, "currency": "usd", "line_number": "3"})
    )
    classified = both.transform(classify_source(c.GL_JOURNAL_LINES, rates_on(fx, [DAY, later])))
    verdicts = sorted(
        (r["business_date"], r["line_number"], r["_reason_code"], r["_reason_detail"])
        for r in classified.collect()
    )
    missing = "no 2026-11-23 rate to USD for eur"
    assert verdicts == [
        (DAY, "1", None, None),
        (DAY, "2", None, None),
        (later, "1", "MISSING_FX_RATE", missing),
        (later, "2", "MISSING_FX_RATE", missing),
        # JE-1 on the later date is its own journal: its USD line does not balance it.
        (later, "3", "UNBALANCED_JOURNAL", verdicts[-1][3]),
    ]
    assert verdicts[-1][3].startswith("journal JE-1 does not balance")

    claim = {
        "report_id": "ER-1",
        "line_id": "1",
        "employee_id": "E1",
        "transaction_date": "2026-11-21",
        "merchant": "Uber",
        "amount": "10.00",
        "currency": "USD",
    }
    lines = on(DAY, c.EXPENSE_LINES, claim).unionByName(on(later, c.EXPENSE_LINES, claim))
    reasons = {
        r["business_date"]: r["_reason_code"]
        for r in lines.transform(classify_source(c.EXPENSE_LINES)).collect()
    }
    # Spent after DAY (a future date there), inside the later date's window; the same key on
    # two dates is no duplicate.
    assert reasons == {DAY: "DATE_OUT_OF_RANGE", later: None}
