"""Reviewers' decisions become weighted labelled history, and change the history model's key."""

from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from enrichment.prompts import EXPENSE_LINE_TASK
from infra.history_models import history_stats, model_key
from transforms.expenses import expense_text
from transforms.frames import local_frame
from transforms.human_labels import (
    HISTORY_LABEL,
    LABEL_SOURCE,
    LABEL_WEIGHT,
    with_human_labels,
)
from transforms.mllib_classifier import ClassifierParams
from transforms.review import DECISION_SCHEMA
from transforms.training_window import training_window

pytestmark = pytest.mark.spark

D = date(2026, 3, 2)
KEY = ("report_id", "line_id")
HISTORY_SCHEMA = (
    "report_id string, line_id int, business_date date, merchant string, "
    "justification string, claimed_category string"
)
HISTORY = [
    ("R1", 1, D, "Uber", "Taxi to the client.", "ground_transport"),
    ("R1", 2, D, "Pret", "Team dinner.", "ground_transport"),
    ("R1", 3, D, "Hilton", "Two nights.", "lodging"),
    ("R2", 1, D, "Adobe", "Licence.", None),
    (None, None, D, None, None, None),
]


def _decision(key, field, decision, new_value, at, table="expense_lines", day=D):
    return (f"id-{at}", table, key, day, field, decision, "x", new_value, "why", "alice",
            "analyst", datetime(2026, 3, 10, at), "m", "v1", 0.3)  # fmt: skip


DECISIONS = [
    # overridden, then overridden again: the latest decision is the label
    _decision('{"report_id":"R1","line_id":"2"}', "spend_category", "overridden", "lodging", 9),
    _decision('{"report_id":"R1","line_id":"2"}', "spend_category", "overridden", "meals", 10),
    # accepted: the same label as the claim, now vouched for by a person
    _decision('{"report_id":"R1","line_id":"3"}', "spend_category", "accepted", "lodging", 11),
    # a line without an employee's label gets one
    _decision('{"report_id":"R2","line_id":"1"}', "spend_category", "overridden", "software", 12),
    # another table, another date: not this history's
    _decision(
        '{"report_id":"R1","line_id":"1"}',
        "case_type",
        "overridden",
        "benefits",
        13,
        table="hr_cases",
    ),
    _decision(
        '{"report_id":"R1","line_id":"1"}',
        "spend_category",
        "overridden",
        "meals",
        14,
        day=date(2026, 3, 3),
    ),
]


def _labelled(spark, decisions, weight=5.0):
    return local_frame(spark, HISTORY, HISTORY_SCHEMA).transform(
        with_human_labels(
            local_frame(spark, decisions, DECISION_SCHEMA),
            "expense_lines",
            KEY,
            "spend_category",
            "claimed_category",
            weight,
        )
    )


def test_a_decision_replaces_the_employee_label_with_a_human_one_weighted_higher(spark):
    actual = _labelled(spark, DECISIONS).select(
        "report_id", "line_id", "claimed_category", HISTORY_LABEL, LABEL_SOURCE, LABEL_WEIGHT
    )
    expected = local_frame(
        spark,
        [
            ("R1", 1, "ground_transport", "ground_transport", "employee", 1.0),
            ("R1", 2, "ground_transport", "meals", "human", 5.0),
            ("R1", 3, "lodging", "lodging", "human", 5.0),
            ("R2", 1, None, "software", "human", 5.0),
            (None, None, None, None, "employee", 1.0),
        ],
        "report_id string, line_id int, claimed_category string, history_label string, "
        "label_source string, label_weight double",
    )
    assert_df_equality(
        actual, expected, ignore_row_order=True, ignore_nullable=True, ignore_column_order=False
    )


def test_a_weight_must_be_positive(spark):
    with pytest.raises(ValueError, match="positive"):
        _labelled(spark, DECISIONS, weight=0.0)


def test_a_decision_reaches_the_training_fingerprint_and_changes_the_model_key(spark):
    window = training_window(date(2026, 3, 9), 90)

    def key_of(decisions, weight=5.0):
        labelled = _labelled(spark, decisions, weight).where(
            F.col(HISTORY_LABEL).isin(EXPENSE_LINE_TASK.taxonomy.names)
        )
        stats = history_stats(labelled, expense_text(), HISTORY_LABEL)
        params = ClassifierParams()
        return stats, model_key(EXPENSE_LINE_TASK.name, window, stats, [], params)

    none, key_none = key_of([])
    assert (none.rows, none.human_labels) == (3, 0)
    # One override: the line's label and weight change, and so does the model.
    one, key_one = key_of(DECISIONS[:1])
    assert (one.rows, one.human_labels) == (3, 1) and key_one != key_none
    # An accept of the employee's own label changes only the row's weight: a new model too.
    accepted, key_accepted = key_of([DECISIONS[2]])
    assert accepted.human_labels == 1 and key_accepted != key_none
    # So does a new weight for the same decisions; the same decisions give the same key.
    assert key_of(DECISIONS[:1], weight=2.0)[1] != key_one
    assert key_of(DECISIONS[:1])[1] == key_one
