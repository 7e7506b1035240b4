"""The review loop's Spark logic: which values queue, their status, and decisions over gold."""

from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from transforms.frames import local_frame
from transforms.review import (
    ASSIGNMENT_SCHEMA,
    DECISION_SCHEMA,
    QUEUE_COLUMNS,
    ReviewField,
    apply_decisions,
    key_of,
    open_items_by_age,
    override_rates,
    queued_rows,
    review_candidates,
    unmatched_decisions,
    with_record_text,
    with_review_status,
)

pytestmark = pytest.mark.spark

D = date(2026, 3, 31)
KEY = ["report_id", "line_id"]
CATEGORY = ReviewField("spend_category", "confidence", "expense_line_enrichment")
GOLD_SCHEMA = (
    "report_id string, line_id int, business_date date, spend_category string, "
    "confidence double, injection_suspected boolean, enrichment_status string, "
    "failure_kind string, source string, model string, prompt_version string"
)
GOLD_ROWS = [
    # fine: confident, ok
    ("R1", 1, D, "meals", 0.95, False, "ok", "none", "llm", "gpt", "expense-v1"),
    ("R1", 2, D, "lodging", 0.40, False, "ok", "none", "cache", "gpt", "expense-v1"),
    ("R1", 3, D, None, None, False, "failed", "malformed", "llm", "gpt", "expense-v1"),
    ("R1", 4, D, None, None, False, "skipped", "budget", "rule", "budget", "expense-v1"),
    # injection wins over low confidence
    ("R1", 5, D, "other", 0.10, True, "ok", "none", "llm", "gpt", "expense-v1"),
    ("R1", 6, D, "software", 0.90, False, "ok", "fallback", "model", "embedded", None),
    ("R1", 7, D, None, None, False, "redacted", "other", "rule", "redaction-v1", None),
    # a person decided it: never queued again, however low the confidence says
    ("R1", 8, D, "travel_air", 0.20, False, "ok", "none", "human", "human-review", None),
    # the null row: nothing says it succeeded
    ("R2", 1, D, None, None, None, None, None, None, "gpt", None),
]
CANDIDATE_SCHEMA = (
    "table_name string, key string, business_date date, field string, proposed_value string, "
    "confidence double, threshold double, source string, model string, prompt_version string, "
    "reason string"
)


def _key(report: str, line: int) -> str:
    return key_of({"report_id": report, "line_id": line})


def test_candidates_are_the_values_that_need_a_person_with_their_strongest_reason(spark):
    gold = local_frame(spark, GOLD_ROWS, GOLD_SCHEMA)
    queued = gold.transform(
        review_candidates("expense_lines", KEY, [CATEGORY], {"expense_line_enrichment": 0.6})
    )

    def row(line, value, conf, source, model, version, reason, report="R1"):
        field = "spend_category"
        key = _key(report, line)
        return ("expense_lines", key, D, field, value, conf, 0.6, source, model, version, reason)

    expected = local_frame(
        spark,
        [
            row(2, "lodging", 0.40, "cache", "gpt", "expense-v1", "LOW_CONFIDENCE"),
            row(3, None, None, "llm", "gpt", "expense-v1", "ENRICHMENT_FAILED"),
            row(4, None, None, "rule", "budget", "expense-v1", "SKIPPED_BUDGET"),
            row(5, "other", 0.10, "llm", "gpt", "expense-v1", "SUSPECTED_INJECTION"),
            row(6, "software", 0.90, "model", "embedded", None, "FALLBACK"),
            row(7, None, None, "rule", "redaction-v1", None, "WITHHELD"),
            row(1, None, None, None, "gpt", None, "ENRICHMENT_FAILED", report="R2"),
        ],
        CANDIDATE_SCHEMA,
    )
    assert_df_equality(queued, expected, ignore_row_order=True, ignore_nullable=True)


def test_two_fields_of_one_table_queue_separately_with_their_own_thresholds(spark):
    schema = (
        "case_id string, business_date date, case_type string, case_type_confidence double, "
        "urgency string, urgency_confidence double, injection_suspected boolean, "
        "enrichment_status string, failure_kind string, source string, model string, "
        "prompt_version string, urgency_enrichment_status string, urgency_failure_kind string, "
        "urgency_source string, urgency_model string, urgency_prompt_version string"
    )
    gold = local_frame(spark,
        [
            ("C1", D, "benefits", 0.65, "low", 0.75, False, "ok", "none", "llm", "m", "t1",
             "ok", "none", "llm", "m", "u2"),
            ("C2", D, None, None, None, None, None, None, None, None, "m", None,
             None, None, None, "m", None),
        ],
        schema,
    )  # fmt: skip
    fields = [
        ReviewField("case_type", "case_type_confidence", "hr_case_type"),
        ReviewField("urgency", "urgency_confidence", "hr_case_urgency", prefix="urgency_"),
    ]
    queued = gold.transform(
        review_candidates(
            "hr_cases", ["case_id"], fields, {"hr_case_type": 0.7, "hr_case_urgency": 0.8}
        )
    )
    c1, c2 = key_of({"case_id": "C1"}), key_of({"case_id": "C2"})
    low, failed = "LOW_CONFIDENCE", "ENRICHMENT_FAILED"
    expected = local_frame(spark,
        [
            ("hr_cases", c1, D, "case_type", "benefits", 0.65, 0.7, "llm", "m", "t1", low),
            ("hr_cases", c1, D, "urgency", "low", 0.75, 0.8, "llm", "m", "u2", low),
            ("hr_cases", c2, D, "case_type", None, None, 0.7, None, "m", None, failed),
            ("hr_cases", c2, D, "urgency", None, None, 0.8, None, "m", None, failed),
        ],
        CANDIDATE_SCHEMA,
    )  # fmt: skip
    assert_df_equality(queued, expected, ignore_row_order=True, ignore_nullable=True)


def _decision(line, decision, new, who, at, report="R1", day=D, field="spend_category", did=None):
    return (
        did or f"{report}-{line}-{at:%H%M}",
        "expense_lines",
        _key(report, line),
        day,
        field,
        decision,
        "lodging",
        new,
        "comment",
        who,
        "analyst",
        at,
        "gpt",
        "expense-v1",
        0.4,
    )


AT_9, AT_10 = datetime(2026, 4, 1, 9, 0), datetime(2026, 4, 1, 10, 0)


def test_status_is_the_latest_decision_and_age_counts_from_the_business_date(spark):
    gold = local_frame(spark, GOLD_ROWS, GOLD_SCHEMA)
    candidates = gold.transform(
        review_candidates("expense_lines", KEY, [CATEGORY], {"expense_line_enrichment": 0.6})
    ).where("reason IN ('LOW_CONFIDENCE', 'ENRICHMENT_FAILED')")
    decisions = local_frame(
        spark,
        [
            # overridden first, then accepted: the later decision is in force
            _decision(2, "overridden", "meals", "alice", AT_9),
            _decision(2, "accepted", "lodging", "bob", AT_10),
            _decision(3, "overridden", "meals", "alice", AT_9),
            # another date's decision does not close this date's item
            _decision(1, "overridden", "meals", "alice", AT_9, report="R2", day=date(2026, 3, 30)),
            (None,) * 15,
        ],
        DECISION_SCHEMA,
    )

    def assigned(line, to, at, report="R1", did=None):
        return (did or f"a-{report}-{line}-{at:%H%M}", "expense_lines", _key(report, line), D,
                "spend_category", to, "ann", "analyst", at)  # fmt: skip

    assignments = local_frame(
        spark,
        [
            # assigned to carol, then to dave: dave's; the item was decided by bob
            assigned(2, "carol", AT_9),
            assigned(2, "dave", AT_10),
            # assigned, then unassigned
            assigned(1, "carol", AT_9, report="R2"),
            assigned(1, None, AT_10, report="R2"),
            (None,) * 9,
        ],
        ASSIGNMENT_SCHEMA,
    )
    queue = candidates.transform(
        with_review_status(decisions, date(2026, 4, 2), assignments)
    ).select("key", "status", "assignee", "decided_by", "decided_at", "age_days")
    expected = local_frame(
        spark,
        [
            (_key("R1", 2), "accepted", "dave", "bob", AT_10, 2),
            (_key("R1", 3), "overridden", None, "alice", AT_9, 2),
            (_key("R2", 1), "open", None, None, None, 2),
        ],
        "key string, status string, assignee string, decided_by string, decided_at timestamp, "
        "age_days int",
    )
    assert_df_equality(queue, expected, ignore_row_order=True, ignore_nullable=True)
    assert candidates.transform(with_review_status(decisions, D)).columns == QUEUE_COLUMNS


def test_decisions_replace_model_output_and_keep_the_reviewer(spark):
    gold = local_frame(spark, GOLD_ROWS[:3] + GOLD_ROWS[-1:], GOLD_SCHEMA)
    decisions = local_frame(
        spark,
        [
            _decision(2, "accepted", "lodging", "bob", AT_9),
            _decision(2, "overridden", "meals", "alice", AT_10),
            _decision(3, "overridden", "telecom", "bob", AT_9),
            # another field of the table: not this one's
            _decision(1, "overridden", "x", "bob", AT_9, field="justification_summary"),
        ],
        DECISION_SCHEMA,
    )
    applied = gold.transform(apply_decisions(decisions, "expense_lines", KEY, CATEGORY))
    expected = local_frame(spark,
        [
            GOLD_ROWS[0] + (None, None),
            ("R1", 2, D, "meals", 1.0, False, "ok", "none", "human", "human-review", "expense-v1",
             "alice", AT_10),
            ("R1", 3, D, "telecom", 1.0, False, "ok", "none", "human", "human-review", "expense-v1",
             "bob", AT_9),
            GOLD_ROWS[-1] + (None, None),
        ],
        GOLD_SCHEMA + ", reviewed_by string, reviewed_at timestamp",
    )  # fmt: skip
    assert_df_equality(applied, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_prefixed_field_gets_prefixed_provenance(spark):
    schema = (
        "case_id string, business_date date, urgency string, urgency_confidence double, "
        "urgency_enrichment_status string, urgency_failure_kind string, urgency_source string, "
        "urgency_model string, source string"
    )
    gold = local_frame(spark, [("C1", D, "low", 0.5, "ok", "none", "llm", "m", "llm")], schema)
    decisions = local_frame(spark,
        [
            (
                "d1", "hr_cases", key_of({"case_id": "C1"}), D, "urgency", "overridden", "low",
                "high", "safety", "hana", "hr", AT_9, "m", "u2", 0.5,
            )
        ],
        DECISION_SCHEMA,
    )  # fmt: skip
    urgency = ReviewField("urgency", "urgency_confidence", "hr_case_urgency", prefix="urgency_")
    applied = gold.transform(apply_decisions(decisions, "hr_cases", ["case_id"], urgency))
    expected = local_frame(
        spark,
        [("C1", D, "high", 1.0, "ok", "none", "human", "human-review", "llm", "hana", AT_9)],
        schema + ", urgency_reviewed_by string, urgency_reviewed_at timestamp",
    )
    assert_df_equality(applied, expected, ignore_nullable=True)


def test_a_decision_on_a_key_that_no_longer_exists_is_returned_not_lost(spark):
    gold = local_frame(spark, GOLD_ROWS[:2], GOLD_SCHEMA)
    gone = _decision(9, "overridden", "meals", "alice", AT_9)
    decisions = local_frame(
        spark,
        [
            _decision(2, "overridden", "meals", "alice", AT_9),
            gone,
            _decision(9, "overridden", "meals", "alice", AT_9, field="justification_summary"),
            (None,) * 15,
        ],
        DECISION_SCHEMA,
    )
    unmatched = gold.transform(unmatched_decisions(decisions, "expense_lines", KEY, [CATEGORY]))
    expected = local_frame(spark, [gone], DECISION_SCHEMA)
    assert_df_equality(unmatched, expected, ignore_nullable=True)
    applied = gold.transform(apply_decisions(decisions, "expense_lines", KEY, CATEGORY))
    assert applied.count() == 2


def test_the_record_text_is_the_models_text_redacted_with_the_dates_roster(spark):
    queue = local_frame(
        spark,
        [(_key("R1", 1), D), (_key("R1", 2), D), (_key("R1", 3), D), (_key("R1", 4), D)],
        "key string, business_date date",
    )
    records = local_frame(
        spark,
        [
            ("R1", 1, D, "Mail jane.doe@example.com about Jane Doe's dinner"),
            ("R1", 2, D, None),
            # not queued: never redacted, never in the queue
            ("R1", 9, D, "Call +44 20 7946 0958"),
            ("R1", 1, date(2026, 3, 30), "another date's line"),
        ],
        "report_id string, line_id int, business_date date, justification string",
    )
    text = F.concat(F.lit("Justification: "), F.coalesce(F.col("justification"), F.lit("")))
    names = {D: ["Jane Doe"], date(2026, 3, 30): []}
    out = queue.transform(with_record_text(records, KEY, text, names))
    expected = local_frame(
        spark,
        [
            (_key("R1", 1), D, "Justification: Mail [EMAIL_1] about [PERSON_1]'s dinner"),
            (_key("R1", 2), D, "Justification: "),
            (_key("R1", 3), D, None),
            (_key("R1", 4), D, None),
        ],
        "key string, business_date date, record_text string",
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_queued_rows_are_the_rows_whose_key_and_date_are_queued_columns_unchanged(spark):
    queue = local_frame(
        spark,
        [(_key("R1", 1), D, "spend_category"), (_key("R1", 1), D, "other_field")],
        "key string, business_date date, field string",
    )
    rows = local_frame(
        spark,
        [
            ("R1", 1, D, "queued"),
            # the same key on another date, another key on the date: not queued
            ("R1", 1, date(2026, 3, 30), "another date"),
            ("R1", 2, D, "another line"),
        ],
        "report_id string, line_id int, business_date date, merchant string",
    )
    out = rows.transform(queued_rows(KEY, queue))
    assert out.columns == rows.columns
    assert [tuple(r) for r in out.collect()] == [("R1", 1, D, "queued")]


def test_open_items_by_table_and_age_leave_out_what_was_decided_since(spark):
    schema = "table_name string, key string, business_date date, field string, status string"
    queue = local_frame(
        spark,
        [
            ("expense_lines", _key("R1", 1), D, "spend_category", "open"),
            ("expense_lines", _key("R1", 2), D, "spend_category", "open"),
            ("expense_lines", _key("R1", 3), date(2026, 3, 20), "spend_category", "open"),
            ("expense_lines", _key("R1", 4), date(2026, 1, 2), "spend_category", "open"),
            ("expense_lines", _key("R1", 5), D, "spend_category", "accepted"),
            ("hr_cases", key_of({"case_id": "C1"}), D, "urgency", "open"),
            (None, None, None, None, None),
        ],
        schema,
    )
    # R1-2 was decided after the queue was published
    decisions = local_frame(
        spark, [_decision(2, "accepted", "lodging", "bob", AT_9)], DECISION_SCHEMA
    )
    out = queue.transform(open_items_by_age(decisions, date(2026, 4, 1)))
    expected = local_frame(
        spark,
        [
            ("expense_lines", "0-1 days", 1),
            ("expense_lines", "8-30 days", 1),
            ("expense_lines", "over 30 days", 1),
            ("hr_cases", "0-1 days", 1),
        ],
        "table_name string, age_bucket string, items long",
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_override_rates_per_model_and_prompt_version_count_a_value_once(spark):
    def decided(line, decision, at, model="gpt", version="expense-v1"):
        row = list(_decision(line, decision, "meals", "alice", at))
        row[12], row[13] = model, version
        return tuple(row)

    decisions = local_frame(
        spark,
        [
            decided(1, "overridden", AT_9),
            # decided twice: the later (accepted) is in force
            decided(2, "overridden", AT_9),
            decided(2, "accepted", AT_10),
            decided(3, "overridden", AT_9, version="expense-v2"),
            decided(4, "accepted", AT_9, model="embedded", version=None),
        ],
        DECISION_SCHEMA,
    )
    expected = local_frame(
        spark,
        [
            ("expense_lines", "spend_category", "gpt", "expense-v1", 2, 1, 0.5),
            ("expense_lines", "spend_category", "gpt", "expense-v2", 1, 1, 1.0),
            ("expense_lines", "spend_category", "embedded", None, 1, 0, 0.0),
        ],
        "table_name string, field string, model string, prompt_version string, decisions long, "
        "overridden long, override_rate double",
    )
    assert_df_equality(
        override_rates(decisions), expected, ignore_row_order=True, ignore_nullable=True
    )
