"""Reviewers' decisions as labelled history for the history model, weighted above employee coding.

A decision in force (``ops.review_decisions``, the latest per key, date and field) on a record of
the history window replaces the label the employee coded for that record: the row's
``history_label`` is the reviewer's value, its ``label_source`` is ``human`` and its
``label_weight`` the configured weight (``infra/settings.py``, ``HUMAN_LABEL_WEIGHT``); every
other row keeps the employee's label with ``label_source`` ``employee`` and weight 1. An accepted
decision counts too: a person vouched for the label.

``human_label_effect`` reports what the decisions changed: the model trained with them and one
trained on the employees' coding alone, scored on the same held-back rows against the best label
known for each (the reviewer's where there is one).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from transforms.mllib_classifier import (
    ClassifierParams,
    TrainedClassifier,
    held_out_rows,
    labelled_accuracy,
    train_text_classifier,
)
from transforms.review import SOURCE_HUMAN, key_json, latest_decisions

HISTORY_LABEL = "history_label"
LABEL_SOURCE = "label_source"
LABEL_WEIGHT = "label_weight"
HUMAN = SOURCE_HUMAN
EMPLOYEE = "employee"


@dataclass(frozen=True)
class HumanLabelEffect:
    """How the reviewers' labels changed a history model, on the rows held back from its fit.

    Attributes:
        human_labels: training-window rows labelled by a reviewer.
        weight: what one of them weighs in the fit (an employee's label weighs 1).
        held_out: held-back rows scored (text and label present).
        human_labels_held_out: of them, rows labelled by a reviewer.
        accuracy_with: the model trained with the reviewers' labels, weighted.
        accuracy_without: a model trained on the employees' coding alone.
    """

    human_labels: int
    weight: float
    held_out: int
    human_labels_held_out: int
    accuracy_with: float | None
    accuracy_without: float | None


def with_human_labels(
    decisions: DataFrame,
    table: str,
    key_cols: Sequence[str],
    field: str,
    coded_label_col: str,
    weight: float,
) -> Callable[[DataFrame], DataFrame]:
    """Add ``history_label``, ``label_source`` and ``label_weight`` to history rows of ``table``.

    ``decisions`` are ledger rows (``DECISION_SCHEMA``); the decision in force on ``field`` of a
    row's key and business date gives its label, else ``coded_label_col`` does.

    Raises:
        ValueError: a weight that is not positive.
    """
    if weight <= 0:
        raise ValueError(f"a label weight is positive, not {weight}")

    def transform(history: DataFrame) -> DataFrame:
        decided = (
            latest_decisions(decisions)
            .where((F.col("table_name") == table) & (F.col("field") == field))
            .select(
                F.col("key").alias("_human_key"),
                "business_date",
                F.col("new_value").alias("_human_label"),
            )
        )
        human = F.col("_human_label").isNotNull()
        return (
            history.withColumn("_human_key", key_json(key_cols))
            .join(decided, ["_human_key", "business_date"], "left")
            .withColumns(
                {
                    HISTORY_LABEL: F.when(human, F.col("_human_label")).otherwise(
                        F.col(coded_label_col)
                    ),
                    LABEL_SOURCE: F.when(human, F.lit(HUMAN)).otherwise(F.lit(EMPLOYEE)),
                    LABEL_WEIGHT: F.when(human, F.lit(float(weight))).otherwise(F.lit(1.0)),
                }
            )
            .drop("_human_key", "_human_label")
        )

    return transform


def human_label_effect(
    labelled: DataFrame,
    text_col: str,
    coded_label_col: str,
    labels: Sequence[str],
    trained: TrainedClassifier,
    params: ClassifierParams,
) -> HumanLabelEffect:
    """Score ``trained`` (fitted on ``labelled``'s ``history_label`` with ``label_weight``) and a
    model fitted on the employees' coding alone on the rows both held back from their fit.

    ``labelled`` holds ``text_col``, ``history_label``, ``label_source``, ``label_weight`` and
    ``coded_label_col``; ``labels`` are the labels the employees' coding may train on (the
    taxonomy). The held-back rows are the same for both models (``held_out_rows`` hashes the text,
    not the label), and are scored against ``history_label``: the reviewer's label where there is
    one. A baseline that cannot be trained (fewer than two coded labels) scores None.
    """
    coded = labelled.where(F.col(coded_label_col).isin(list(labels)))
    try:
        baseline: TrainedClassifier | None = train_text_classifier(
            coded, text_col, coded_label_col, params=params
        )
    except ValueError:
        baseline = None
    held = held_out_rows(labelled, text_col).persist()
    try:
        accuracy_with, scored = labelled_accuracy(trained, held, text_col, HISTORY_LABEL)
        accuracy_without = (
            None
            if baseline is None
            else labelled_accuracy(baseline, held, text_col, HISTORY_LABEL)[0]
        )
        human_held = held.where(F.col(LABEL_SOURCE) == HUMAN).count()
    finally:
        held.unpersist()
    human = (
        labelled.where(F.col(LABEL_SOURCE) == HUMAN)
        .agg(F.count(F.lit(1)).alias("rows"), F.max(LABEL_WEIGHT).alias("weight"))
        .first()
    )
    return HumanLabelEffect(
        human_labels=int(human["rows"]),
        weight=float(human["weight"] or 1.0),
        held_out=scored,
        human_labels_held_out=human_held,
        accuracy_with=accuracy_with,
        accuracy_without=accuracy_without,
    )
