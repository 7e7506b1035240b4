"""``cli run``'s printed summary: the same text from delta-rs and Arrow (a local lakehouse, no JVM)
as from Spark (an object store's path), on a small lakehouse of every table it reads."""

from datetime import date
from decimal import Decimal

import pytest
from deltalake import write_deltalake

import cli
from infra.lakehouse import LakehouseResource, TableRef
from transforms.frames import local_frame

DAY = date(2026, 3, 31)
OTHER = date(2026, 3, 30)


def _write(spark, lakehouse: LakehouseResource, layer: str, name: str, schema: str, rows) -> None:
    """``rows`` (tuples in ``schema``'s order, without the date) on DAY, and one on OTHER.

    Typed by Spark, written by delta-rs (a Delta table partitioned by date, as the pipeline's;
    milliseconds where six Spark writes took about 25 s): both readers read the same files."""
    stamped = [(*r, DAY) for r in rows] + [(*rows[0], OTHER)]
    frame = local_frame(spark, stamped, f"{schema}, business_date date")
    write_deltalake(
        lakehouse.path(TableRef(layer, name)), frame.toArrow(), partition_by=["business_date"]
    )


@pytest.fixture
def summarized(spark, lakehouse_root) -> LakehouseResource:
    lakehouse = LakehouseResource()
    model, cache = "embedded/tfidf", "gpt-x"
    _write(spark, lakehouse, "gold", "expense_lines",
           "enrichment_status string, source string, model string, failure_kind string",
           [("ok", "model", model, None), ("ok", "model", model, None),
            ("ok", "cache", cache, None), ("fallback", "fallback", model, "fallback"),
            ("ok", "llm", cache, None), ("ok", "llm", model, None)])  # fmt: skip
    _write(spark, lakehouse, "gold", "recon_exceptions",
           "recon string, exception_type string, status string, age_days int",
           [("bank_gl", "GL_NOT_IN_BANK", "open", 3), ("bank_gl", "GL_NOT_IN_BANK", "closed", 9),
            ("ap_gl", "AP_NOT_IN_GL", "open", 0), ("ap_gl", "AP_NOT_IN_GL", None, 1),
            ("expense_policy", "WEEKEND_EXPENSE", "closed", 2)])  # fmt: skip
    _write(spark, lakehouse, "gold", "close_summary",
           "legal_entity string, recon string, match_rate double, "
           "ap_variance_unexplained decimal(18,2)",
           [("US01", "bank_gl", 0.9684, None), ("US01", "ap_gl", 1.0, Decimal("12.50")),
            ("DE01", "ap_gl", None, None), ("DE01", "payroll", 0.5, None),
            ("GROUP", "bank_gl", None, None)])  # fmt: skip
    _write(spark, lakehouse, "gold", "hr_cases",
           "case_type string, urgency string, source string, model string, "
           "failure_kind string, urgency_failure_kind string",
           [("resignation", "high", "model", model, None, None),
            ("benefits", "low", "model", model, None, "fallback"),
            ("benefits", "high", "llm", cache, None, None)])  # fmt: skip
    _write(spark, lakehouse, "gold", "close_narrative",
           "legal_entity string, source string, model string, error string, narrative string, "
           "status string",
           [("US01", "rule", "template/v1", None, "US01: all matched.", "ok"),
            ("DE01", "llm", cache, None, "DE01: two open.", "ok"),
            ("GB01", "rule", "template/v1", "refused", None, "failed")])  # fmt: skip
    _write(spark, lakehouse, "silver", "quarantine", "source string, reason_code string",
           [("expense_lines", "INVALID_DATE"), ("ap_invoices", "DUPLICATE_KEY"),
            ("expense_lines", "INVALID_AMOUNT"), ("expense_lines", "INVALID_DATE")])  # fmt: skip
    return lakehouse


def test_the_summary_reads_the_same_from_arrow_as_from_spark(spark, summarized):
    arrow = cli._summary(DAY, DAY, "offline", cli._partition_reader(DAY))
    on_spark = cli._summary(DAY, DAY, "offline", cli._partition_reader(DAY, spark))
    assert arrow == on_spark
    lines = arrow.splitlines()
    assert "  gold.expense_lines               6 rows on 2026-03-31" in lines
    assert (
        "    enrichment: fallback/fallback=1, ok/cache=1, ok/llm=2, ok/model=2" in lines
    )  # by status and source
    # Most first; ties by source and model.
    assert (
        "    labelled by: model embedded/tfidf=2; cache gpt-x=1; fallback embedded/tfidf=1; "
        "llm embedded/tfidf=1; llm gpt-x=1" in lines
    )
    assert "    bank_gl         GL_NOT_IN_BANK               1       1      9d" in lines
    assert "    ap_gl           AP_NOT_IN_GL                 1       0      1d" in lines
    assert f"    {'total open':<40}{2:>6}{2:>8}" in lines
    rates = lines[lines.index("  Match rates (gold.close_summary):") + 1 :][:4]
    assert rates == [
        "    DE01  ap_gl          n/a",
        "    GROUP bank_gl        n/a",
        "    US01  ap_gl       100.0%  AP variance unexplained: 12.50",
        "    US01  bank_gl      96.8%",
    ]
    assert (
        "  gold.hr_cases on 2026-03-31: 3 cases (benefits/high=1, benefits/low=1, "
        "resignation/high=1)" in lines
    )
    assert sum("LLM unavailable" in line for line in lines) == 2  # expense lines, urgency
    assert "    GB01: no paragraph (failed: refused)" in lines
    assert lines[-4] == (
        "  silver.quarantine on 2026-03-31: ap_invoices/DUPLICATE_KEY=1, "
        "expense_lines/INVALID_AMOUNT=1, expense_lines/INVALID_DATE=2"
    )


def test_a_table_no_run_wrote_is_left_out(lakehouse_root):
    text = cli._summary(OTHER, DAY, "offline", cli._partition_reader(DAY))
    assert text.splitlines()[0].startswith("Closed business dates 2026-03-30 .. 2026-03-31.")
    assert "gold." not in text.split("Query it")[0] and "silver.quarantine" not in text
