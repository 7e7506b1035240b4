"""Building gold-shaped expense lines (and invoice documents, contract terms) and pushing them
through the write-audit-publish gate."""

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
from transforms.contract_documents import PARTY_STRUCT
from transforms.frames import local_frame

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
    candidate = local_frame(spark, rows, SCHEMA)
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
    staged = wap.stage_dates(lakehouse, local_frame(spark, rows, SCHEMA), GOLD, [day])
    wap.audit_dates(lakehouse, spark, GOLD, [day], staged, gold_expense_lines_suite, "test")


# gold.invoice_documents' shape, for the review loop's tests.
FIELD = (
    "struct<field:string,value:string,confidence:double,page:int,start:int,end:int,source:string>"
)
ITEM = (
    "struct<description:string,quantity:decimal(18,4),unit_price:decimal(18,2),"
    "amount:decimal(18,2),confidence:double,page:int,start:int,end:int,source:string>"
)
INVOICE_DOCUMENT_SCHEMA = (
    "business_date date, file_name string, vendor_name string, vendor_tax_id string, "
    "invoice_number string, invoice_date date, due_date date, currency string, "
    "net decimal(18,2), tax decimal(18,2), total decimal(18,2), po_number string, "
    f"fields array<{FIELD}>, line_items array<{ITEM}>, lines_sum_to_net string, "
    "net_plus_tax_is_total string, checks_passed boolean, check_messages array<string>, "
    "enrichment_status string, failure_kind string, source string, model string, "
    "prompt_version string, confidence double, flags array<string>, duplicate_of_file string, "
    "duplicate_of_date date"
)


def _extracted_field(name, value, confidence, source="rule"):
    return (name, value, confidence, 1, 0, 5, source)


def invoice_document(
    name: str,
    *,
    total: str | None = "121.00",
    total_confidence: float = 0.9,
    number: str | None = "INV-1",
    day: date = DAY,
    repeat_of: tuple[str, date] | None = None,
) -> tuple:
    """A gold.invoice_documents row of Acme (net 100.00, tax 20.00, no line items) as the rules
    extract it: ``total`` and ``invoice_number`` as given (None: not found); ``repeat_of``: the
    file and date where the same content first landed."""
    fields = [
        _extracted_field("vendor_name", "Acme", 0.95),
        _extracted_field("invoice_date", str(day - timedelta(days=1)), 0.9),
        _extracted_field("currency", "EUR", 0.9),
        _extracted_field("net", "100.00", 0.9),
        _extracted_field("tax", "20.00", 0.9),
    ]
    if number is not None:
        fields.append(_extracted_field("invoice_number", number, 0.9))
    if total is not None:
        fields.append(_extracted_field("total", total, total_confidence))
    checked = "passed" if total == "120.00" else "failed"
    return (
        day, name, "Acme", None, number, day - timedelta(days=1), None, "EUR", Decimal("100.00"),
        Decimal("20.00"), None if total is None else Decimal(total), None, fields, [],
        "not_applicable", checked, checked == "passed",
        ["no line items or no net amount"], "ok", "none", "rule", "invoice-rules-v1",
        "extract-invoice-v1", 0.9, [], *(repeat_of or (None, None)),
    )  # fmt: skip


# gold.contract_terms' shape (the columns the review loop and the close read), for the review
# loop's tests.
CONTRACT_TERMS_SCHEMA = (
    "business_date date, file_name string, effective_date date, term string, "
    "renewal_terms string, notice_period string, payment_terms string, governing_law string, "
    f"payment_days int, parties {PARTY_STRUCT}, fields array<{FIELD}>, "
    "enrichment_status string, failure_kind string, source string, model string, "
    "prompt_version string, confidence double, flags array<string>, document_sha256 string, "
    "duplicate_of_file string, duplicate_of_date date"
)
CONTRACT_EFFECTIVE = date(2026, 1, 1)


def contract_terms_row(
    name: str,
    *,
    payment_terms: str | None = "net 30 days",
    payment_confidence: float = 0.8,
    effective_date: date | None = CONTRACT_EFFECTIVE,
    status: str = "ok",
    failure_kind: str = "none",
    flags: tuple[str, ...] = (),
    day: date = DAY,
) -> tuple:
    """A gold.contract_terms row of Acme's supply contract as the contract rules read it: a
    term, notice period and governing law at the phrase confidence, no renewal terms (optional,
    not stated), ``payment_terms`` and ``effective_date`` as given (None: not found). A failed or
    skipped extraction (``status``) reads nothing."""
    read = status == "ok"
    found = {
        "effective_date": effective_date and str(effective_date),
        "term": "two (2) years",
        "notice_period": "thirty (30) days' written notice",
        "payment_terms": payment_terms,
        "governing_law": "England and Wales",
    }
    if not read:
        found = dict.fromkeys(found)
    fields = [
        _extracted_field(k, v, payment_confidence if k == "payment_terms" else 0.8)
        for k, v in found.items()
        if v is not None
    ]
    days = None
    if found["payment_terms"] is not None:
        days = int("".join(c for c in found["payment_terms"] if c.isdigit()) or 0) or None
    parties = [
        ("Acme Ltd", "Supplier", 0.7, 1, 10, 18, "rule"),
        ("Buyer Corp", "Customer", 0.7, 1, 30, 40, "rule"),
    ]
    return (
        day, name, None if found["effective_date"] is None else effective_date, found["term"],
        None, found["notice_period"], found["payment_terms"], found["governing_law"], days,
        parties if read else [], fields, status, failure_kind, "rule",
        "embedded/contract-rules-v1", "extract-contract-v1", 0.8 if read else None,
        list(flags), f"sha-{name}", None, None,
    )  # fmt: skip


# One rule: the contracts' gate mechanics are under test, not their suite.
CONTRACT_KEY_UNIQUE = Suite(
    "gate_mechanics",
    ("file_name",),
    (
        Rule(
            "file_name_unique",
            ERROR,
            "One row per contract.",
            gxe.ExpectColumnValuesToBeUnique(column="file_name"),
        ),
    ),
)


def stage_audited_contracts(
    spark, lakehouse: LakehouseResource, rows: list[tuple], day: date = DAY
) -> None:
    """``stage_audited`` for gold.contract_terms rows (``contract_terms_row``)."""
    table = wap.GoldTable("contract_terms")
    frame = local_frame(spark, rows, CONTRACT_TERMS_SCHEMA)
    staged = wap.stage_dates(lakehouse, frame, table, [day])
    wap.audit_dates(lakehouse, spark, table, [day], staged, lambda _: CONTRACT_KEY_UNIQUE, "test")
