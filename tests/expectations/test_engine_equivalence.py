"""GX's pandas engine (a small frame collected once) and its Spark engine give the same report.

The project's suites run on both engines over frames full of violations (nulls, values out of
their set, duplicate keys, PII in text, out-of-range dates, decimals and floats, a drifted label
mix); every field of every rule's result must agree. Where the engines would differ (a real NaN,
non-ASCII text under a regex, more rows than the bound) the frame stays on Spark.
"""

import re
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from enrichment.taxonomies import EXCEPTION_REASON
from expectations.expense_lines import gold_expense_lines_suite
from expectations.pii import PII_PATTERNS
from expectations.reconciliation import (
    close_narrative_suite,
    close_summary_suite,
    exception_notes_suite,
    recon_exceptions_suite,
    recon_matches_suite,
)
from expectations.runner import validate, validate_dates
from expectations.sources import silver_source_suite
from tests.gold_helpers import DAY, SCHEMA, line
from transforms.contracts import CONTRACTS, EXPENSE_LINES, FX_RATES
from transforms.frames import local_frame

PII_TEXTS = (
    "Write to jane.doe@example.com about it.",
    "Paid to GB82 WEST 1234 5698 7654 32 on Monday.",
    "Employee 123-45-6789 was not on the roster.",
    "Card 4111 1111 1111 1111 was charged twice.",
    "Call +1 555-123-4567 for details.",
)


def _both(spark_df, suite, monkeypatch):
    """``suite`` on ``spark_df``: (the Spark engine's report, the pandas engine's report)."""
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "0")
    on_spark = validate(spark_df, suite)
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "1000")
    on_pandas = validate(spark_df, suite)
    assert (on_spark.engine, on_pandas.engine) == ("spark", "pandas")
    return on_spark, on_pandas


def _found(report) -> dict:
    """What a report found: everything but where its Data Docs are and which engine ran."""
    out = asdict(report)
    for key in ("docs_url", "failures_docs_url", "engine"):
        out.pop(key)
    return out


def _assert_same(spark_df, suite, monkeypatch) -> dict:
    on_spark, on_pandas = _both(spark_df, suite, monkeypatch)
    for a, b in zip(on_spark.results, on_pandas.results, strict=True):
        assert asdict(a) == asdict(b), a.name
    assert _found(on_spark) == _found(on_pandas)
    return {r.name: r for r in on_pandas.results}


def _failed(i: int, **changes) -> dict:
    return line(
        i,
        enrichment_status="failed",
        spend_category=None,
        confidence=None,
        failure_kind="circuit_open",
        **changes,
    )


def test_gold_expense_lines(spark, monkeypatch):
    rows = [line(i, spend_category="meals") for i in range(12)]
    rows[1] = line(1, report_id=None)  # null key part
    rows[2] = line(0)  # duplicate key of row 0
    rows[3] = line(3, amount=Decimal("0.01"))  # the bound itself: Spark compares as doubles
    rows[4] = line(4, amount=Decimal("0.00"), currency="US$")
    rows[5] = line(5, transaction_date=DAY + timedelta(days=3), confidence=1.5)
    rows[6] = line(6, justification_summary="Mail jane.doe@example.com", spend_category="x")
    rows[7] = line(7, justification_summary="", failure_kind="refusal")
    rows[8] = _failed(8, employee_id=None)
    rows[9] = _failed(9, line_id=None)  # a null int: toPandas makes the column float
    rows[10] = line(10, transaction_date=DAY - timedelta(days=400), amount=Decimal("100000.01"))
    df = local_frame(spark, rows, SCHEMA)
    suite = gold_expense_lines_suite(DAY, {"ground_transport": 40})
    found = _assert_same(df, suite, monkeypatch)
    failed = {name for name, r in found.items() if not r.success}
    assert {
        "report_id_not_null",
        "line_id_not_null",
        "line_key_unique",
        "employee_id_not_null",
        "amount_in_range",
        "currency_is_iso",
        "transaction_date_in_claim_window",
        "spend_category_in_taxonomy",
        "confidence_is_probability",
        "summary_length_bounded",
        "summary_has_no_personal_data",
        "enriched_share",
        "refusal_and_truncation_rate",
        "spend_category_drift",
    } <= failed
    # 0.01 is in range on Spark (a double comparison), so on pandas too.
    assert found["amount_in_range"].unexpected_count == 2
    assert sorted(found["amount_in_range"].sample) == ["0.00", "100000.01"]
    assert {"report_id": "ER-3", "line_id": None} in found["line_id_not_null"].offending_keys


def _silver_value(contract, column, kind: str, i: int):
    if column == contract.currency_column:
        return "USD"
    if column == "status":
        return "active"
    if kind == "date":
        return DAY
    if kind == "timestamp":
        return datetime(2026, 3, 30, 9, 30)
    if kind.startswith("decimal"):
        return Decimal("100.00") if column != "rate_to_usd" else Decimal("1.25000000")
    if kind == "int":
        return i + 1
    return f"{column}-{i}"


# Per source: changes that break its own identities (row index -> column -> value).
SILVER_BREAKS = {
    "gl_journal_lines": {5: {"credit": Decimal("0.00")}},
    "payroll_register": {5: {"net": Decimal("0.01")}},
    "fx_rates": {5: {"rate_to_usd": Decimal("-1.5")}, 6: {"rate_date": DAY - timedelta(days=1)}},
    "hris_roster": {5: {"status": "retired"}},
}


@pytest.mark.parametrize("name", sorted(n for n in CONTRACTS if n != EXPENSE_LINES.name))
def test_silver_sources(spark, monkeypatch, name):
    contract = CONTRACTS[name]
    columns = [(c.name, c.silver_type) for c in contract.columns]
    columns += [(f"{a}_usd", "decimal(18,2)") for a in contract.amount_columns]
    if "business_date" not in {c for c, _ in columns}:
        columns.append(("business_date", "date"))
    rows = []
    for i in range(8):
        row = {c: _silver_value(contract, c, kind, i) for c, kind in columns}
        row["business_date"] = DAY
        if name == "payroll_register":
            row.update(
                gross=Decimal("100.00"),
                taxes=Decimal("20.00"),
                deductions=Decimal("10.00"),
                net=Decimal("70.00"),
            )
        rows.append(row)
    rows[1].update({c: rows[0][c] for c in contract.key})  # a duplicate key
    required = [c.name for c in contract.columns if c.required]
    rows[2].update({c: None for c in required if c not in contract.key})
    rows[2].update({f"{a}_usd": None for a in contract.amount_columns})
    if contract.currency_column:
        rows[3][contract.currency_column] = "US$"
    for i, changes in SILVER_BREAKS.get(name, {}).items():
        rows[i].update(changes)
    if contract is FX_RATES:  # the key is the currency: keep it unique but for row 1
        for i, row in enumerate(rows):
            row["currency"] = row["currency"] if i in (0, 1, 3) else f"C{i:02d}"
    schema = ", ".join(f"{c} {kind}" for c, kind in columns)
    df = local_frame(spark, [tuple(r[c] for c, _ in columns) for r in rows], schema)
    found = _assert_same(df, silver_source_suite(contract, DAY), monkeypatch)
    assert not found["key_unique"].success
    assert all(not r.success for n, r in found.items() if n.endswith("_usd_not_null"))
    broken = {
        "gl_journal_lines": "journals_balance",
        "payroll_register": "net_pay_adds_up",
        "fx_rates": "rate_positive",
        "hris_roster": "status_known",
    }
    if name in broken:
        assert found[broken[name]].unexpected_count == 1, found[broken[name]]


EXCEPTION_SCHEMA = (
    "exception_id string, recon string, exception_type string, status string, resolution string, "
    "closed_on date, records array<string>, age_days int, business_date date, "
    "first_seen_date date, amount decimal(18,2), currency string, detail string"
)


def _exception(i: int, **changes) -> dict:
    row = {
        "exception_id": f"EX-{i}",
        "recon": "payroll_hris",
        "exception_type": "PAY_VARIANCE",
        "status": "open",
        "resolution": None,
        "closed_on": None,
        "records": [f"R{i}"],
        "age_days": 2,
        "business_date": DAY,
        "first_seen_date": DAY - timedelta(days=2),
        "amount": Decimal("12.50"),
        "currency": "USD",
        "detail": f"Employee E{i:05d} paid 12.50 more than the roster says.",
    }
    row.update(changes)
    return row


def test_recon_exceptions(spark, monkeypatch):
    rows = [_exception(i) for i in range(10)]
    rows[1] = _exception(0)  # duplicate id
    rows[2] = _exception(2, recon="bank_xx", exception_type="NOPE", records=[])
    rows[3] = _exception(3, status="closed", closed_on=DAY)  # no resolution
    rows[4] = _exception(4, resolution="forgotten", age_days=9, amount=None, currency="US$")
    for i, text in enumerate(PII_TEXTS[:3]):
        rows[5 + i] = _exception(5 + i, detail=text)
    rows[8] = _exception(8, recon="bank_gl", detail=PII_TEXTS[0])  # not an HR sentence
    df = local_frame(spark, rows, EXCEPTION_SCHEMA)
    found = _assert_same(df, recon_exceptions_suite(DAY), monkeypatch)
    assert found["no_personal_data_in_detail"].unexpected_count == 3
    assert {r.name for r in found.values() if not r.success} >= {
        "exception_id_unique",
        "recon_known",
        "exception_type_known",
        "resolution_known",
        "closure_consistent",
        "age_consistent",
        "names_its_records",
        "amount_not_null",
        "currency_is_iso",
    }


def test_recon_matches_and_close_summary(spark, monkeypatch):
    matches = local_frame(
        spark,
        [
            ("M-1", "REFERENCE", Decimal("10.00"), Decimal("10.00"), ["a"], ["b"]),
            ("M-1", "FUZZY", Decimal("10.00"), Decimal("10.01"), ["a"], ["b"]),
            ("M-3", None, Decimal("10.00"), Decimal("10.02"), [], ["b"]),
            ("M-4", "REFERENCE", None, Decimal("3.00"), ["a"], ["b"]),
        ],
        "match_id string, rule string, left_amount decimal(18,2), right_amount decimal(18,2), "
        "left_records array<string>, right_records array<string>",
    )
    found = _assert_same(matches, recon_matches_suite(DAY), monkeypatch)
    assert found["amounts_agree"].unexpected_count == 1  # 0.01 agrees as a double does
    summary = local_frame(
        spark,
        [
            ("US01", "bank_gl", 0.5, 1, Decimal("0.00")),
            ("US01", "bank_gl", 1.5, -2, Decimal("0.01")),
            ("GB01", "ap_gl", None, None, Decimal("-0.02")),
            ("GB01", None, 0.0, 0, None),
        ],
        "legal_entity string, recon string, match_rate double, open_exceptions bigint, "
        "ap_variance_unexplained decimal(18,2)",
    )
    found = _assert_same(summary, close_summary_suite(DAY), monkeypatch)
    assert not any(r.success for r in found.values())


NARRATIVE_SCHEMA = (
    "legal_entity string, status string, source string, narrative string, error string"
)


def test_close_narrative(spark, monkeypatch):
    rows = [(f"E{i}", "ok", "llm", f"E{i}: all matched.", None) for i in range(8)]
    rows[1] = ("E0", "failed", "model", None, "boom")
    rows[2] = ("E2", "weird", "human", "x" * 2001, "fallback: offline")
    for i, text in enumerate(PII_TEXTS):
        rows[3 + i] = (f"E{3 + i}", "failed", "rule", text, None)
    df = local_frame(spark, rows, NARRATIVE_SCHEMA)
    found = _assert_same(df, close_narrative_suite(), monkeypatch)
    assert found["narrative_has_no_personal_data"].unexpected_count == len(PII_TEXTS)
    assert not found["narrative_failed_share"].success


def test_exception_notes(spark, monkeypatch):
    label = EXCEPTION_REASON.names[0]
    rows = [(f"EX-{i}", label, 0.8, "m", "ok", "A timing difference.", "none") for i in range(8)]
    rows[1] = ("EX-0", "astrology", 1.2, None, "odd", "", "fallback")
    rows[2] = ("EX-2", None, None, "m", "failed", "Mail jane.doe@example.com", "fallback")
    rows[3] = ("EX-3", label, -0.1, "m", "failed", "y" * 401, "circuit_open")
    df = local_frame(
        spark,
        rows,
        "exception_id string, probable_reason string, reason_confidence double, model string, "
        "enrichment_status string, analyst_note string, failure_kind string",
    )
    found = _assert_same(df, exception_notes_suite(), monkeypatch)
    assert sum(not r.success for r in found.values()) >= 6


def test_a_frame_over_the_bound_is_validated_on_spark(spark, monkeypatch):
    df = local_frame(spark, [line(i) for i in range(6)], SCHEMA)
    suite = gold_expense_lines_suite(DAY)
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "5")
    over = validate(df, suite)
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "6")
    at = validate(df, suite)
    assert (over.engine, at.engine) == ("spark", "pandas")
    assert over.passed and _found(over) == _found(at)


def test_a_real_nan_stays_on_spark(spark, monkeypatch):
    # NaN is a value to Spark (not null, not in [0, 1]); pandas would take it for a null.
    rows = [line(i) for i in range(3)]
    df = local_frame(spark, rows, SCHEMA).withColumn(
        "confidence", F.when(F.col("line_id") == 2, F.lit(float("nan"))).otherwise(0.9)
    )
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "1000")
    report = validate(df, gold_expense_lines_suite(DAY))
    assert report.engine == "spark"


def test_non_ascii_text_under_a_regex_stays_on_spark(spark, monkeypatch):
    # Arabic-Indic digits: Python's \d takes them, Java's does not: the engines would disagree.
    text = "Employee ١٢٣-٤٥-٦٧٨٩ paid."
    assert re.search(PII_PATTERNS["NATIONAL_ID"], text)
    probe = local_frame(spark, [(text,)], "t string")
    assert not probe.select(F.col("t").rlike(PII_PATTERNS["NATIONAL_ID"])).first()[0]
    df = local_frame(spark, [("E1", "ok", "llm", text, None)], NARRATIVE_SCHEMA)
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "1000")
    report = validate(df, close_narrative_suite())
    assert report.engine == "spark" and report.passed


def test_decimal_bounds_would_differ_compared_exactly():
    # Why a decimal column is validated as doubles on pandas: exactly, 0.01 is below 0.01.
    assert Decimal("0.01") < 0.01
    assert float(Decimal("0.01")) >= 0.01


def test_a_runs_dates_validated_together(spark, monkeypatch):
    # The ranged pass and the lookup over every date: the same reports on both engines.
    from tests.expectations.test_validate_dates import DAYS, _rows, _suite_for

    extra = [
        line(0, DAYS[0]),  # a duplicate key
        line(20, DAYS[2], amount=Decimal("0.00"), currency="US$"),
        line(21, DAYS[2], amount=Decimal("0.01"), line_id=None),
    ]
    df = _rows(spark).unionByName(local_frame(spark, extra, SCHEMA))
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "0")
    on_spark = validate_dates(df, _suite_for, DAYS)
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "1000")
    on_pandas = validate_dates(df, _suite_for, DAYS)
    for day in DAYS:
        assert on_spark[day].engine == "spark" and on_pandas[day].engine == "pandas"
        for a, b in zip(on_spark[day].results, on_pandas[day].results, strict=True):
            assert asdict(a) == asdict(b), (day, a.name)
        assert _found(on_spark[day]) == _found(on_pandas[day])
    found = {r.name: r for r in on_pandas[DAYS[0]].results}
    assert found["line_key_unique"].unexpected_count == 2 and found["line_key_unique"].sample
    found = {r.name: r for r in on_pandas[DAYS[2]].results}
    assert found["amount_in_range"].sample == ["0.00"]
    assert {"report_id": "ER-7", "line_id": None} in found["line_id_not_null"].offending_keys
