"""Quality rules for the review queue (``gold.review_queue``), thresholds beside the rules."""

from collections.abc import Sequence

from expectations.gx import expect
from expectations.pii import PII_PATTERNS
from expectations.suite import ERROR, WARN, Rule, Suite
from transforms.review import ACCEPTED, OPEN, OVERRIDDEN, REASONS

# One row per queued value of a date: the queue's grain without business_date (the runner adds it).
KEY = ("table_name", "key", "field")
STATUSES = (OPEN, ACCEPTED, OVERRIDDEN)
NOT_NULL_COLUMNS = ("table_name", "key", "business_date", "field", "reason", "status")
_REASON_LIST = ", ".join(f"'{r}'" for r in REASONS)
_STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)
CONSTRAINTS = {
    "queue_confidence_is_probability": "confidence IS NULL OR "
    "(confidence >= 0 AND confidence <= 1)",
    "queue_reason_known": f"reason IN ({_REASON_LIST})",
    "queue_status_known": f"status IN ({_STATUS_LIST})",
}


def review_queue_suite(tables: Sequence[str]) -> Suite:
    """What a date of the review queue must meet before analysts see it.

    ``tables`` are the reviewed tables' names (``infra/review.py``).
    """
    rules = [
        Rule(
            "key_not_null",
            ERROR,
            "Every queued value names its record's business key.",
            expect.ExpectColumnValuesToNotBeNull(column="key"),
        ),
        Rule(
            "table_is_reviewed",
            ERROR,
            "Every queued value belongs to a reviewed table.",
            expect.ExpectColumnValuesToBeInSet(column="table_name", value_set=sorted(tables)),
        ),
        Rule(
            "field_not_null",
            ERROR,
            "Every queued value names its field.",
            expect.ExpectColumnValuesToNotBeNull(column="field"),
        ),
        Rule(
            "queued_value_unique",
            ERROR,
            "A value is queued once per date: one row per (table, key, field).",
            expect.ExpectCompoundColumnsToBeUnique(column_list=list(KEY)),
        ),
        Rule(
            "reason_known",
            ERROR,
            f"Every queued value says why, one of {', '.join(REASONS)}.",
            expect.ExpectColumnValuesToBeInSet(column="reason", value_set=list(REASONS)),
        ),
        Rule(
            "status_known",
            ERROR,
            f"Every queued value is {', '.join(STATUSES)}.",
            expect.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        ),
        Rule(
            "confidence_is_probability",
            ERROR,
            "Confidence, where there is one, is between 0 and 1.",
            expect.ExpectColumnValuesToBeBetween(column="confidence", min_value=0, max_value=1),
        ),
        Rule(
            "record_text_has_no_personal_data",
            ERROR,
            "The record text is the redacted text the model read: no e-mail address, phone "
            "number, national id or card number.",
            expect.ExpectColumnValuesToNotMatchRegexList(
                column="record_text", regex_list=list(PII_PATTERNS.values())
            ),
        ),
        Rule(
            "record_text_present",
            WARN,
            "Every queued value carries its record's text (missing: the record is gone).",
            expect.ExpectColumnValuesToNotBeNull(column="record_text"),
        ),
    ]
    return Suite(name="gold_review_queue", key=KEY, rules=tuple(rules))


def all_rule_names(tables: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every (name, severity, description) an audit can report, for Dagster check specs."""
    return [(r.name, r.severity, r.description) for r in review_queue_suite(tables).rules]
