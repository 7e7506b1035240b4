"""The reviewed tables' declarations (``infra/review.py``) against frames of their gold shape:
what queues, with which record text, and how a decision lands."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from infra.review import REVIEWED_TABLES
from infra.settings import review_thresholds
from tests.gold_helpers import (
    CONTRACT_TERMS_SCHEMA,
    INVOICE_DOCUMENT_SCHEMA,
    contract_terms_row,
    invoice_document,
)
from transforms.frames import local_frame
from transforms.review import (
    DECISION_SCHEMA,
    key_of,
    review_candidates,
    with_record_text,
)

pytestmark = pytest.mark.spark

D = date(2026, 3, 31)
AT = datetime(2026, 4, 1, 9, 0)
NOTES = REVIEWED_TABLES["recon_exception_notes"]
NOTES_SCHEMA = (
    "business_date date, exception_id string, recon string, exception_type string, "
    "legal_entity string, probable_reason string, reason_confidence double, analyst_note string, "
    "injection_suspected boolean, enrichment_status string, failure_kind string, source string, "
    "model string, prompt_version string"
)
NOTES_ROWS = [
    (D, "E1", "bank", "unmatched_bank_line", "FR01", "timing_difference", 0.9, "Wait a day.",
     False, "ok", "none", "llm", "gpt", "exception-note-v1"),
    (D, "E2", "bank", "amount_mismatch", "FR01", "other", 0.3, "Look at the fee.",
     False, "ok", "none", "llm", "gpt", "exception-note-v1"),
    (D, "E3", "ap", "unmatched_invoice", None, None, None, None,
     None, "failed", "malformed", "llm", "gpt", "exception-note-v1"),
    (D, None, None, None, None, None, None, None, None, None, None, None, None, None),
]  # fmt: skip
EXCEPTIONS_SCHEMA = (
    "business_date date, exception_id string, recon string, exception_type string, "
    "legal_entity string, detail string, amount decimal(18,2), currency string"
)


def _key(exception: str) -> str:
    return key_of({"exception_id": exception})


def test_unsure_exception_notes_queue_with_the_exceptions_text(spark):
    notes = local_frame(spark, NOTES_ROWS, NOTES_SCHEMA)
    exceptions = local_frame(
        spark,
        [
            (
                D,
                "E2",
                "bank",
                "amount_mismatch",
                "FR01",
                "Bank line not in the ledger",
                Decimal("1.00"),
                "EUR",
            ),
            (D, "E3", "ap", "unmatched_invoice", None, None, None, None),
        ],
        EXCEPTIONS_SCHEMA,
    )
    queued = notes.transform(
        review_candidates(NOTES.name, NOTES.key_cols, NOTES.fields, review_thresholds())
    ).transform(with_record_text(exceptions, NOTES.key_cols, NOTES.text(), {D: []}))
    got = {(r["key"], r["field"], r["reason"], r["record_text"]) for r in queued.collect()}
    assert got == {
        (
            _key("E2"),
            "probable_reason",
            "LOW_CONFIDENCE",
            "Exception: amount_mismatch in bank for FR01\n"
            "Description: Bank line not in the ledger\nAmount: 1.00 EUR",
        ),
        (
            _key("E3"),
            "probable_reason",
            "ENRICHMENT_FAILED",
            "Exception: unmatched_invoice in ap for the group\nDescription: \nAmount: n/a ",
        ),
        # the null row: nothing says it succeeded, no key to find its text by
        ("{}", "probable_reason", "ENRICHMENT_FAILED", None),
    }


def test_a_decision_on_an_exception_note_is_the_persons_in_gold(spark):
    notes = local_frame(spark, NOTES_ROWS[:2], NOTES_SCHEMA)
    decisions = local_frame(spark,
        [
            ("d1", NOTES.name, _key("E2"), D, "probable_reason", "overridden", "other",
             "amount_or_fx_error", "bank fee", "alice", "analyst", AT, "gpt",
             "exception-note-v1", 0.3),
        ],
        DECISION_SCHEMA,
    )  # fmt: skip
    published = notes.transform(NOTES.overlay(decisions))
    expected = local_frame(spark,
        [
            NOTES_ROWS[0] + (None, None),
            (D, "E2", "bank", "amount_mismatch", "FR01", "amount_or_fx_error", 1.0,
             "Look at the fee.", False, "ok", "none", "human", "human-review",
             "exception-note-v1", "alice", AT),
        ],
        NOTES_SCHEMA + ", reviewed_by string, reviewed_at timestamp",
    )  # fmt: skip
    assert_df_equality(published, expected, ignore_row_order=True, ignore_nullable=True)


INVOICES = REVIEWED_TABLES["invoice_documents"]


def test_an_invoices_unsure_or_missing_required_fields_queue_each_on_its_own(spark):
    documents = local_frame(
        spark,
        [
            invoice_document("a.pdf", total="120.00"),  # all sure: nothing queues
            invoice_document("b.pdf", total_confidence=0.3),  # the total is unsure
            invoice_document("c.pdf", number=None),  # a required field is missing
        ],
        INVOICE_DOCUMENT_SCHEMA,
    )
    queued = documents.transform(INVOICES.candidates(review_thresholds()))
    got = {(r["key"], r["field"], r["proposed_value"], r["reason"]) for r in queued.collect()}
    # po_number and due_date are absent everywhere but optional: never queued
    assert got == {
        ('{"file_name":"b.pdf"}', "total", "121.00", "LOW_CONFIDENCE"),
        ('{"file_name":"c.pdf"}', "invoice_number", None, "LOW_CONFIDENCE"),
    }


def test_a_person_s_field_value_is_that_fields_and_the_checks_run_again(spark):
    documents = local_frame(
        spark,
        [invoice_document("b.pdf", total_confidence=0.3), invoice_document("c.pdf", number=None)],
        INVOICE_DOCUMENT_SCHEMA,
    )
    decisions = local_frame(spark,
        [
            ("d1", INVOICES.name, '{"file_name":"b.pdf"}', D, "total", "overridden", "121.00",
             "120.00", "misread 0 as 1", "alice", "analyst", AT, "invoice-rules-v1",
             "extract-invoice-v1", 0.3),
            ("d2", INVOICES.name, '{"file_name":"c.pdf"}', D, "invoice_number", "overridden",
             None, "INV-9", "printed in the footer", "bob", "analyst", AT, "invoice-rules-v1",
             "extract-invoice-v1", None),
        ],
        DECISION_SCHEMA,
    )  # fmt: skip
    published = {
        r["file_name"]: r for r in documents.transform(INVOICES.overlay(decisions)).collect()
    }
    b, c = published["b.pdf"], published["c.pdf"]
    assert b["total"] == Decimal("120.00")
    total = [f for f in b["fields"] if f["field"] == "total"]
    assert [(f["value"], f["confidence"], f["source"], f["page"]) for f in total] == [
        ("120.00", 1.0, "human", 1)
    ]
    # the document's own provenance is the extraction's; the person is named per field
    assert (b["source"], b["model"]) == ("rule", "invoice-rules-v1")
    assert [(r["field"], r["reviewed_by"]) for r in b["reviewed_fields"]] == [("total", "alice")]
    assert (b["net_plus_tax_is_total"], b["checks_passed"]) == ("passed", True)
    # a field the extraction did not return gets its element, other fields are kept
    assert c["invoice_number"] == "INV-9"
    assert ("invoice_number", "INV-9", None, "human") in {
        (f["field"], f["value"], f["page"], f["source"]) for f in c["fields"]
    }
    assert len(c["fields"]) == 7
    assert c["net_plus_tax_is_total"] == "failed"
    assert "100.00 + 20.00 = 120.00, total 121.00" in c["check_messages"]


def test_an_invoices_record_text_is_its_pages_redacted_as_the_extractor_sends_them(spark):
    """A repeat's text is its first landing's pages, as the extractor read them."""
    earlier = D - timedelta(days=1)
    documents = local_frame(
        spark,
        [
            invoice_document("b.pdf"),
            invoice_document("copy-of-a.pdf", repeat_of=("a.pdf", earlier)),
        ],
        INVOICE_DOCUMENT_SCHEMA,
    )
    pages = local_frame(
        spark,
        [
            (D, "b.pdf", 2, "Total 121.00 EUR", "text", None),
            (D, "b.pdf", 1, "Acme, Jane Doe, jane@acme.example", "ocr", 0.8),
            (earlier, "a.pdf", 1, "Acme invoice A", "text", None),
            (earlier, "c.pdf", 1, "not read", "text", None),
        ],
        "business_date date, file_name string, page int, text string, method string, "
        "ocr_confidence double",
    )
    assert INVOICES.text_days(documents, [D]) == [earlier, D]
    queue = local_frame(
        spark,
        [('{"file_name":"b.pdf"}', D), ('{"file_name":"copy-of-a.pdf"}', D)],
        "key string, business_date date",
    )
    out = queue.transform(
        with_record_text(
            INVOICES.records(documents, pages),
            INVOICES.key_cols,
            INVOICES.text(),
            {D: ["Jane Doe"]},
            INVOICES.redaction_kinds,
        )
    )
    # The roster's names and e-mail are redacted; amounts stay (documents keep salary-like
    # figures: DOCUMENT_REDACTION), pages in order after their markers.
    assert {r["key"]: r["record_text"] for r in out.collect()} == {
        '{"file_name":"b.pdf"}': (
            "<<page 1>>\nAcme, [PERSON_1], [EMAIL_1]\n<<page 2>>\nTotal 121.00 EUR"
        ),
        '{"file_name":"copy-of-a.pdf"}': "<<page 1>>\nAcme invoice A",
    }


CONTRACTS = REVIEWED_TABLES["contract_terms"]


def test_a_contracts_unsure_missing_or_unread_terms_queue_each_on_its_own(spark):
    contracts = local_frame(
        spark,
        [
            contract_terms_row("a.pdf"),  # every term sure: nothing queues
            contract_terms_row("b.pdf", payment_confidence=0.4),  # payment terms unsure
            contract_terms_row("c.pdf", effective_date=None),  # a required term is missing
            contract_terms_row("d.pdf", status="failed", failure_kind="malformed"),
            contract_terms_row("e.pdf", status="skipped", failure_kind="budget"),
            contract_terms_row("f.pdf", flags=("injection_suspected",)),
        ],
        CONTRACT_TERMS_SCHEMA,
    )
    rows = contracts.transform(CONTRACTS.candidates(review_thresholds())).collect()
    got = {(r["key"], r["field"], r["proposed_value"], r["confidence"], r["reason"]) for r in rows}
    # renewal_terms is absent everywhere but optional: never queued; an unread contract queues
    # its required terms (effective_date, payment_terms), a flagged one every term it states.
    assert got == {
        ('{"file_name":"b.pdf"}', "payment_terms", "net 30 days", 0.4, "LOW_CONFIDENCE"),
        ('{"file_name":"c.pdf"}', "effective_date", None, None, "LOW_CONFIDENCE"),
        ('{"file_name":"d.pdf"}', "effective_date", None, None, "ENRICHMENT_FAILED"),
        ('{"file_name":"d.pdf"}', "payment_terms", None, None, "ENRICHMENT_FAILED"),
        ('{"file_name":"e.pdf"}', "effective_date", None, None, "SKIPPED_BUDGET"),
        ('{"file_name":"e.pdf"}', "payment_terms", None, None, "SKIPPED_BUDGET"),
        *(
            ('{"file_name":"f.pdf"}', field, value, 0.8, "SUSPECTED_INJECTION")
            for field, value in (
                ("effective_date", "2026-01-01"),
                ("term", "two (2) years"),
                ("notice_period", "thirty (30) days' written notice"),
                ("payment_terms", "net 30 days"),
                ("governing_law", "England and Wales"),
            )
        ),
    }
    # the extraction task's threshold, the contract's model and prompt version
    assert {(r["threshold"], r["model"], r["prompt_version"]) for r in rows} == {
        (0.6, "embedded/contract-rules-v1", "extract-contract-v1")
    }


def test_a_persons_contract_term_is_that_terms_and_payment_days_follow_payment_terms(spark):
    contracts = local_frame(
        spark,
        [
            contract_terms_row("b.pdf", payment_confidence=0.4),
            contract_terms_row("c.pdf", effective_date=None),
        ],
        CONTRACT_TERMS_SCHEMA,
    )
    decisions = local_frame(spark,
        [
            ("d1", CONTRACTS.name, '{"file_name":"b.pdf"}', D, "payment_terms", "overridden",
             "net 30 days", "net 45 days", "clause 7.2 says 45", "alice", "analyst", AT,
             "embedded/contract-rules-v1", "extract-contract-v1", 0.4),
            ("d2", CONTRACTS.name, '{"file_name":"c.pdf"}', D, "effective_date", "overridden",
             None, "2026-02-01", "dated on the signature page", "bob", "analyst", AT,
             "embedded/contract-rules-v1", "extract-contract-v1", None),
        ],
        DECISION_SCHEMA,
    )  # fmt: skip
    published = {
        r["file_name"]: r for r in contracts.transform(CONTRACTS.overlay(decisions)).collect()
    }
    b, c = published["b.pdf"], published["c.pdf"]
    # the person's payment terms, and the days the reconciliation reads from them
    assert (b["payment_terms"], b["payment_days"]) == ("net 45 days", 45)
    terms = [f for f in b["fields"] if f["field"] == "payment_terms"]
    assert [(f["value"], f["confidence"], f["source"]) for f in terms] == [
        ("net 45 days", 1.0, "human")
    ]
    assert [(r["field"], r["reviewed_by"]) for r in b["reviewed_fields"]] == [
        ("payment_terms", "alice")
    ]
    # the contract's own provenance is the extraction's
    assert (b["source"], b["model"]) == ("rule", "embedded/contract-rules-v1")
    # a missing term gets the person's value (typed) and its element; payment days unchanged
    assert (c["effective_date"], c["payment_days"]) == (date(2026, 2, 1), 30)
    assert ("effective_date", "2026-02-01", "human") in {
        (f["field"], f["value"], f["source"]) for f in c["fields"]
    }
    assert [(r["field"], r["reviewed_by"]) for r in c["reviewed_fields"]] == [
        ("effective_date", "bob")
    ]
