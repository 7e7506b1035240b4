"""Suites for the reconciliation gold tables: identities a controller would check by hand.

Matched amounts agree within tolerance, every exception names its records, a closed exception says
when and why it closed, ages add up, no personal data in the analyst-facing sentence, match rates
are rates, and the AP control variance is fully explained by listed items (warn if not).
"""

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from enrichment.taxonomies import EXCEPTION_REASON
from expectations.enrichment import availability_rules, label_rules, summary_rules
from expectations.gx import expect
from expectations.pii import PII_PATTERNS
from expectations.suite import ERROR, WARN, Rule, Suite
from transforms.contracts import VALID_CURRENCIES
from transforms.recon.common import RECONS

MATCH_RULES = ("REFERENCE", "AMOUNT_DATE_WINDOW")
EXCEPTION_TYPES = (
    "AMOUNT_MISMATCH",
    "BANK_NOT_IN_GL",
    "GL_NOT_IN_BANK",
    "AP_NOT_IN_GL",
    "GL_NOT_IN_AP",
    "DOC_AMOUNT_MISMATCH",
    "DOC_DATE_MISMATCH",
    "DOC_NOT_IN_AP",
    "AP_WITHOUT_DOC",
    "DUPLICATE_DOCUMENT",
    "AP_TERMS_OUTSIDE_CONTRACT",
    "PAID_UNKNOWN_EMPLOYEE",
    "PAID_NOT_ACTIVE",
    "ACTIVE_NOT_PAID",
    "PAY_VARIANCE",
    "DUPLICATE_PAYMENT",
    "DUPLICATE_CLAIM",
    "SPLIT_TRANSACTION",
    "OVER_LIMIT",
    "WEEKEND_EXPENSE",
    "BLOCKED_MERCHANT",
)
RESOLUTIONS = ("matched", "superseded", "aged_out")
# Patterns checked in payroll exception sentences (record ids would trip the card/phone patterns).
HR_DETAIL_PII = ("EMAIL", "IBAN", "NATIONAL_ID")
MATCH_TOLERANCE = 0.01
# Unexplained AP control variance (entity currency) above which the close warns.
AP_UNEXPLAINED_TOLERANCE = 0.01

# Delta constraints on the gold tables: the invariants no writer may break.
EXCEPTIONS_NOT_NULL = ("business_date", "exception_id", "recon", "exception_type", "status")
EXCEPTIONS_CONSTRAINTS = {
    "known_status": "status IN ('open', 'closed')",
    "closed_has_date": "(status = 'closed') = (closed_on IS NOT NULL)",
    "age_not_negative": "age_days >= 0",
}
MATCHES_NOT_NULL = ("business_date", "match_id", "recon", "rule")
MATCHES_CONSTRAINTS = {
    "amounts_agree": f"abs(left_amount - right_amount) <= {MATCH_TOLERANCE}",
}
SUMMARY_NOT_NULL = ("business_date", "legal_entity", "recon")
SUMMARY_CONSTRAINTS = {
    "match_rate_is_rate": "match_rate IS NULL OR (match_rate >= 0 AND match_rate <= 1)",
}


def _exception_checks(df: DataFrame) -> DataFrame:
    closed = F.col("status") == "closed"
    return df.withColumns(
        {
            "n_records": F.size("records"),
            "closure_consistent": closed
            == (F.col("closed_on").isNotNull() & F.col("resolution").isNotNull()),
            "age_consistent": F.col("age_days")
            == F.datediff(F.col("business_date"), F.col("first_seen_date")),
            # HR exceptions are where personal data could leak into the sentence analysts read.
            "hr_detail": F.when(F.col("recon") == "payroll_hris", F.col("detail")),
        }
    )


def recon_exceptions_suite(business_date: date) -> Suite:
    """gold.recon_exceptions for one business date."""
    rules = (
        Rule(
            "exception_id_unique",
            ERROR,
            "Each exception is reported once a night.",
            expect.ExpectColumnValuesToBeUnique(column="exception_id"),
        ),
        Rule(
            "recon_known",
            ERROR,
            f"The reconciliation is one of {', '.join(RECONS)}.",
            expect.ExpectColumnValuesToBeInSet(column="recon", value_set=list(RECONS)),
        ),
        Rule(
            "exception_type_known",
            ERROR,
            "Exception types are the documented ones (docs/RECONCILIATIONS.md).",
            expect.ExpectColumnValuesToBeInSet(
                column="exception_type", value_set=list(EXCEPTION_TYPES)
            ),
        ),
        Rule(
            "status_known",
            ERROR,
            "An exception is open or closed.",
            expect.ExpectColumnValuesToBeInSet(column="status", value_set=["open", "closed"]),
        ),
        Rule(
            "resolution_known",
            ERROR,
            "A closed exception was matched, superseded or aged out.",
            expect.ExpectColumnValuesToBeInSet(column="resolution", value_set=list(RESOLUTIONS)),
        ),
        Rule(
            "closure_consistent",
            ERROR,
            "Closed exceptions have a closing date and a resolution; open ones have neither.",
            expect.ExpectColumnValuesToBeInSet(column="closure_consistent", value_set=[True]),
        ),
        Rule(
            "age_consistent",
            ERROR,
            "Age in days = business date - first seen date.",
            expect.ExpectColumnValuesToBeInSet(column="age_consistent", value_set=[True]),
        ),
        Rule(
            "names_its_records",
            ERROR,
            "Every exception names the records involved.",
            expect.ExpectColumnValuesToBeBetween(column="n_records", min_value=1),
        ),
        Rule(
            "amount_not_null",
            ERROR,
            "Every exception carries an amount.",
            expect.ExpectColumnValuesToNotBeNull(column="amount"),
        ),
        Rule(
            "currency_is_iso",
            ERROR,
            "Currencies are ISO codes the group transacts in.",
            expect.ExpectColumnValuesToBeInSet(
                column="currency", value_set=sorted(VALID_CURRENCIES)
            ),
        ),
        Rule(
            "no_personal_data_in_detail",
            ERROR,
            "Payroll exception sentences hold no e-mail, IBAN or national id (ids only).",
            expect.ExpectColumnValuesToNotMatchRegexList(
                column="hr_detail",
                regex_list=[PII_PATTERNS[k] for k in HR_DETAIL_PII],
            ),
        ),
    )
    return Suite("gold_recon_exceptions", ("exception_id",), rules, prepare=_exception_checks)


def _match_checks(df: DataFrame) -> DataFrame:
    return df.withColumns(
        {
            "amount_gap": F.abs(F.col("left_amount") - F.col("right_amount")),
            "sides": F.least(F.size("left_records"), F.size("right_records")),
        }
    )


def recon_matches_suite(business_date: date) -> Suite:
    """gold.recon_matches for one business date."""
    rules = (
        Rule(
            "match_id_unique",
            ERROR,
            "Each match group is reported once.",
            expect.ExpectColumnValuesToBeUnique(column="match_id"),
        ),
        Rule(
            "rule_known",
            ERROR,
            f"Every match names its rule ({', '.join(MATCH_RULES)}).",
            expect.ExpectColumnValuesToBeInSet(column="rule", value_set=list(MATCH_RULES)),
        ),
        Rule(
            "amounts_agree",
            ERROR,
            f"Both sides of a match agree within {MATCH_TOLERANCE}.",
            expect.ExpectColumnValuesToBeBetween(
                column="amount_gap", min_value=0, max_value=MATCH_TOLERANCE
            ),
        ),
        Rule(
            "both_sides_present",
            ERROR,
            "A match has at least one record on each side.",
            expect.ExpectColumnValuesToBeBetween(column="sides", min_value=1),
        ),
    )
    return Suite("gold_recon_matches", ("match_id",), rules, prepare=_match_checks)


def close_summary_suite(business_date: date) -> Suite:
    """gold.close_summary for one business date."""
    rules = (
        Rule(
            "entity_recon_unique",
            ERROR,
            "One row per legal entity and reconciliation.",
            expect.ExpectCompoundColumnsToBeUnique(column_list=["legal_entity", "recon"]),
        ),
        Rule(
            "match_rate_is_rate",
            ERROR,
            "Match rates are between 0 and 1.",
            expect.ExpectColumnValuesToBeBetween(column="match_rate", min_value=0, max_value=1),
        ),
        Rule(
            "open_exceptions_not_negative",
            ERROR,
            "Open exception counts are not negative.",
            expect.ExpectColumnValuesToBeBetween(column="open_exceptions", min_value=0),
        ),
        Rule(
            "ap_variance_explained",
            WARN,
            "The AP subledger / GL control variance is explained by listed exceptions.",
            expect.ExpectColumnValuesToBeBetween(
                column="ap_variance_unexplained",
                min_value=-AP_UNEXPLAINED_TOLERANCE,
                max_value=AP_UNEXPLAINED_TOLERANCE,
            ),
        ),
    )
    return Suite("gold_close_summary", ("legal_entity", "recon"), rules)


NARRATIVE_MAX_CHARS = 2000
# Share of paragraphs left failed (no LLM answer, no template fallback) that blocks the night.
NARRATIVE_MAX_FAILED_SHARE = 0.20
# Share of paragraphs not written as configured (the LLM unavailable) before the night warns.
NARRATIVE_MAX_UNAVAILABLE_SHARE = 0.05
NARRATIVE_NOT_NULL = ("business_date", "legal_entity", "status", "source", "model")
NARRATIVE_CONSTRAINTS = {
    "ok_narratives_have_text": "status <> 'ok' OR narrative IS NOT NULL",
    "template_is_never_an_llm": "source <> 'rule' OR prompt_version IS NULL",
}


def close_narrative_suite() -> Suite:
    """One paragraph per entity, bounded, without personal data, saying who wrote it."""
    return Suite(
        "gold_close_narrative",
        ("legal_entity",),
        (
            Rule(
                "one_narrative_per_entity",
                ERROR,
                "One paragraph per legal entity and night.",
                expect.ExpectColumnValuesToBeUnique(column="legal_entity"),
            ),
            Rule(
                "narrative_status_known",
                ERROR,
                "Every paragraph was written (ok) or says why not (failed, skipped).",
                expect.ExpectColumnValuesToBeInSet(
                    column="status", value_set=["ok", "failed", "skipped"]
                ),
            ),
            Rule(
                "narrative_author_recorded",
                ERROR,
                "Every paragraph says whether a rule (template), a model or an LLM wrote it.",
                expect.ExpectColumnValuesToBeInSet(
                    column="source", value_set=["rule", "model", "llm"]
                ),
            ),
            Rule(
                "narrative_length_bounded",
                ERROR,
                f"Paragraphs are 1 to {NARRATIVE_MAX_CHARS} characters.",
                expect.ExpectColumnValueLengthsToBeBetween(
                    column="narrative", min_value=1, max_value=NARRATIVE_MAX_CHARS
                ),
            ),
            Rule(
                "narrative_has_no_personal_data",
                ERROR,
                "No e-mail address, phone number, national id or card number in a paragraph.",
                expect.ExpectColumnValuesToNotMatchRegexList(
                    column="narrative", regex_list=list(PII_PATTERNS.values())
                ),
            ),
            Rule(
                "narratives_written",
                WARN,
                "Every entity got its paragraph.",
                expect.ExpectColumnValuesToBeInSet(column="status", value_set=["ok"]),
            ),
            Rule(
                "narrative_failed_share",
                ERROR,
                f"At most {NARRATIVE_MAX_FAILED_SHARE:.0%} of paragraphs were written by "
                "neither the LLM nor the template fallback.",
                expect.ExpectColumnValuesToNotBeInSet(
                    column="status", value_set=["failed"], mostly=1 - NARRATIVE_MAX_FAILED_SHARE
                ),
            ),
            Rule(
                "narrative_fallback_share",
                WARN,
                f"At most {NARRATIVE_MAX_UNAVAILABLE_SHARE:.0%} of paragraphs carry an error: "
                "the LLM was unavailable (template fallback, or failed).",
                expect.ExpectColumnValuesToBeNull(
                    column="error", mostly=1 - NARRATIVE_MAX_UNAVAILABLE_SHARE
                ),
            ),
        ),
    )


def rule_specs(suite: Suite) -> list[tuple[str, str, str]]:
    """(name, severity, description) of every rule: the asset checks to declare."""
    return [(r.name, r.severity, r.description) for r in suite.rules]


NOTES_NOT_NULL = ("business_date", "exception_id", "enrichment_status", "model")
NOTES_CONSTRAINTS = {
    "reason_confidence_is_probability": "reason_confidence IS NULL OR "
    "(reason_confidence >= 0 AND reason_confidence <= 1)",
    "ok_rows_have_a_reason": "enrichment_status <> 'ok' OR probable_reason IS NOT NULL",
}
NOTE_MAX_CHARS = 400
# Share of notes left failed (no LLM answer and no fallback) that blocks the night.
NOTES_MAX_FAILED_SHARE = 0.20
# Share of notes from the offline fallback (the LLM unavailable) before the night warns.
NOTES_MAX_FALLBACK_SHARE = 0.05


def exception_notes_suite() -> Suite:
    """One note per open exception, its reason in the taxonomy, no personal data in the note."""
    return Suite(
        "gold_recon_exception_notes",
        ("exception_id",),
        (
            Rule(
                "one_note_per_exception",
                ERROR,
                "One note per exception and night.",
                expect.ExpectColumnValuesToBeUnique(column="exception_id"),
            ),
            *label_rules("probable_reason", "reason_confidence", EXCEPTION_REASON),
            *summary_rules("analyst_note", NOTE_MAX_CHARS),
            *availability_rules("note", NOTES_MAX_FAILED_SHARE, NOTES_MAX_FALLBACK_SHARE),
        ),
    )
