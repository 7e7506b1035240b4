"""The reviewed tables' declarations (``infra/review.py``) against frames of their gold shape:
what queues, with which record text, and how a decision lands."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from infra.review import REVIEWED_TABLES
from infra.settings import review_thresholds
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
    notes = spark.createDataFrame(NOTES_ROWS, NOTES_SCHEMA)
    exceptions = spark.createDataFrame(
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
    notes = spark.createDataFrame(NOTES_ROWS[:2], NOTES_SCHEMA)
    decisions = spark.createDataFrame(
        [
            ("d1", NOTES.name, _key("E2"), D, "probable_reason", "overridden", "other",
             "amount_or_fx_error", "bank fee", "alice", "analyst", AT, "gpt",
             "exception-note-v1", 0.3),
        ],
        DECISION_SCHEMA,
    )  # fmt: skip
    published = notes.transform(NOTES.overlay(decisions))
    expected = spark.createDataFrame(
        [
            NOTES_ROWS[0] + (None, None),
            (D, "E2", "bank", "amount_mismatch", "FR01", "amount_or_fx_error", 1.0,
             "Look at the fee.", False, "ok", "none", "human", "human-review",
             "exception-note-v1", "alice", AT),
        ],
        NOTES_SCHEMA + ", reviewed_by string, reviewed_at timestamp",
    )  # fmt: skip
    assert_df_equality(published, expected, ignore_row_order=True, ignore_nullable=True)
