"""The history models' registry: one model per task, week and training content, trained once.

A history model (``transforms/mllib_classifier.py``) serves every date of a week
(``transforms/training_window.py``). Before training, its labelled history is fingerprinted (the
rows' text and label, order-free, with the redaction names, the classifier's parameters and the
code that trains it); a model already registered under that key in ``ops.history_models`` is
loaded, not retrained. Otherwise it is trained, saved under ``LAKEHOUSE_ROOT/models/history/`` and
registered with its training window and metrics. Training is a function of the rows' values alone,
so two lakehouses (or a ranged run and the dates run one by one) that hold the same history train
the same model; the registry saves the retraining, it is not what makes results agree.

History that changes later (a date re-landed and recomputed, or a reviewer's decision on a
record of the window: ``transforms/human_labels.py``) changes the fingerprint, which covers each
row's label and weight: the next date scored trains and registers a new model for the week.
Nothing is deleted. A model trained with reviewers' labels is registered with what they changed:
its accuracy on the held-back rows and that of a model trained on the employees' coding alone.
"""

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pyspark.ml import PipelineModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from infra.lakehouse import LakehouseResource, TableRef
from infra.versions import code_version
from transforms.human_labels import (
    HUMAN,
    LABEL_SOURCE,
    LABEL_WEIGHT,
    HumanLabelEffect,
    human_label_effect,
)
from transforms.mllib_classifier import ClassifierParams, TrainedClassifier, train_text_classifier
from transforms.training_window import TrainingWindow

HISTORY_MODELS = TableRef("ops", "history_models")
_SCHEMA = (
    "task string, week_start date, window_first date, window_last date, model_key string, "
    "model_id string, model_path string, labels array<string>, context_cols array<string>, "
    "temperature double, labelled_rows bigint, training_rows bigint, calibration_rows bigint, "
    "holdout_accuracy double, holdout_log_loss double, params string, code_version string, "
    "run_id string, trained_at timestamp"
)
_COLUMNS = [c.strip().split(" ", 1)[0] for c in _SCHEMA.split(", ")]
# Added with learning from reviewers' decisions: null on rows registered before, and on models
# trained without a reviewer's label (nothing to compare).
_EFFECT_SCHEMA = (
    "human_labels bigint, human_label_weight double, human_labels_held_out bigint, "
    "holdout_rows_compared bigint, holdout_accuracy_with_human_labels double, "
    "holdout_accuracy_without_human_labels double"
)
_EFFECT_COLUMNS = [c.strip().split(" ", 1)[0] for c in _EFFECT_SCHEMA.split(", ")]
_HEX_DIGITS = 15  # 60-bit slices of a SHA-256: their sums fit decimal(38,0)
# What trains a model: a change to any of these (or what they import) retrains.
_TRAINING_CODE = ("transforms.mllib_classifier", "transforms.enrich")


@dataclass(frozen=True)
class HistoryStats:
    """The labelled history of a window: its rows, labels, and a fingerprint of its content."""

    rows: int
    labels: int
    fingerprint: str
    human_labels: int = 0


@dataclass(frozen=True)
class HistoryModel:
    """A registered model: what scores the window's week, what it is called, where it came from.

    ``trained_now`` is False when it was loaded from the registry. ``effect`` is what the
    reviewers' labels in its history changed (None: it has none).
    """

    classifier: TrainedClassifier
    model_id: str
    model_key: str
    window: TrainingWindow
    trained_now: bool
    effect: HumanLabelEffect | None = None


def history_stats(labelled: DataFrame, text: Column, label_col: str) -> HistoryStats:
    """Rows, distinct labels, rows a reviewer labelled and an order-free content fingerprint, in
    one aggregation.

    The fingerprint is the count and two sums of 60-bit slices of each row's SHA-256 over its
    text, label and, where the history carries one (``transforms/human_labels.py``), its weight:
    the same rows in any order, files or partitions give the same fingerprint, and a reviewer's
    decision (a new label, or the same label weighted higher) changes it.
    """
    parts = [F.coalesce(text, F.lit("\u0000")), F.col(label_col)]
    human = F.lit(0)
    if LABEL_WEIGHT in labelled.columns:
        parts.append(F.col(LABEL_WEIGHT).cast("string"))
        human = F.when(F.col(LABEL_SOURCE) == F.lit(HUMAN), 1).otherwise(0)
    digest = F.sha2(F.concat_ws("\u001f", *parts), 256)

    def slice_sum(start: int) -> Column:
        part = F.conv(F.substring(digest, start, _HEX_DIGITS), 16, 10).cast("decimal(38,0)")
        return F.coalesce(F.sum(part), F.lit(0)).cast("string")

    row = labelled.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(label_col).alias("labels"),
        slice_sum(1).alias("a"),
        slice_sum(1 + _HEX_DIGITS).alias("b"),
        F.coalesce(F.sum(human), F.lit(0)).alias("human"),
    ).first()
    fingerprint = f"{row['rows']}:{row['a']}:{row['b']}"
    return HistoryStats(int(row["rows"]), int(row["labels"]), fingerprint, int(row["human"]))


def model_key(
    task: str,
    window: TrainingWindow,
    stats: HistoryStats,
    names: Sequence[str],
    params: ClassifierParams,
) -> str:
    """The registry key: the task, the window, the history's content, the redaction names (the
    training text is redacted with them), the parameters and the training code."""
    described = {
        "task": task,
        "window": [d.isoformat() for d in (window.week_start, window.first, window.last)],
        "content": stats.fingerprint,
        "names": hashlib.sha256("\n".join(sorted(set(names))).encode()).hexdigest(),
        "params": asdict(params),
        "code": [code_version(m) for m in _TRAINING_CODE],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def describe_model(classifier: TrainedClassifier, window: TrainingWindow) -> str:
    """The ``model`` rows name: the family, its training rows and window, its temperature."""
    return (
        f"spark-ml/tfidf-logreg(trained on {classifier.training_rows} labelled rows "
        f"{window.first}..{window.last}, T={classifier.temperature:.2f})"
    )


def registered(lakehouse: LakehouseResource, spark, task: str, key: str) -> dict | None:
    """The newest registry row of ``key`` (None: never trained)."""
    rows = lakehouse.read_rows(
        spark,
        HISTORY_MODELS,
        _COLUMNS,
        equals={"task": task, "model_key": key},
        optional=_EFFECT_COLUMNS,
    )
    return max(rows, key=lambda r: r["trained_at"]) if rows else None


def _registered_effect(row: dict) -> HumanLabelEffect | None:
    if not row.get("human_labels"):
        return None
    return HumanLabelEffect(
        human_labels=int(row["human_labels"]),
        weight=float(row["human_label_weight"] or 1.0),
        held_out=int(row["holdout_rows_compared"] or 0),
        human_labels_held_out=int(row["human_labels_held_out"] or 0),
        accuracy_with=row["holdout_accuracy_with_human_labels"],
        accuracy_without=row["holdout_accuracy_without_human_labels"],
    )


def effect_metadata(model: HistoryModel) -> dict:
    """What a history model's reviewers' labels changed, for a step's metadata (empty: none)."""
    effect = model.effect
    if effect is None:
        return {}
    return {
        "history_model_human_labels": effect.human_labels,
        "history_model_human_label_weight": effect.weight,
        "history_model_holdout_rows_compared": effect.held_out,
        "history_model_human_labels_held_out": effect.human_labels_held_out,
        "history_model_holdout_accuracy_with_human_labels": effect.accuracy_with,
        "history_model_holdout_accuracy_without_human_labels": effect.accuracy_without,
    }


def load_or_train(
    lakehouse: LakehouseResource,
    labelled: DataFrame,
    text_col: str,
    label_col: str,
    *,
    task: str,
    window: TrainingWindow,
    stats: HistoryStats,
    key: str,
    run_id: str,
    params: ClassifierParams | None = None,
    coded_label_col: str | None = None,
    coded_labels: Sequence[str] = (),
) -> HistoryModel:
    """The model registered under ``key`` (``model_key``), else trained on ``labelled`` and
    registered.

    ``labelled`` is the window's labelled history with its (redacted) text in ``text_col``; it is
    read only when the model has to be trained. When it carries reviewers' labels
    (``transforms/human_labels.py``: ``label_weight``, ``label_source``, and the employees' own
    label in ``coded_label_col``), each row weighs its ``label_weight``, and a model trained on
    the employees' coding (``coded_labels`` of it) alone is scored beside it on the held-back
    rows (``human_label_effect``): the comparison is registered and returned.
    """
    spark = labelled.sparkSession
    params = params or ClassifierParams()
    row = registered(lakehouse, spark, task, key)
    if row is not None:
        try:
            pipeline = PipelineModel.load(row["model_path"])
        except Exception:  # the files are gone: train again, register again
            pipeline = None
        if pipeline is not None:
            classifier = TrainedClassifier(
                pipeline=pipeline,
                labels=tuple(row["labels"]),
                temperature=float(row["temperature"]),
                context_cols=tuple(row["context_cols"] or ()),
                training_rows=int(row["training_rows"]),
                calibration_rows=int(row["calibration_rows"]),
                holdout_accuracy=row["holdout_accuracy"],
                holdout_log_loss=row["holdout_log_loss"],
            )
            return HistoryModel(
                classifier,
                row["model_id"],
                key,
                window,
                trained_now=False,
                effect=_registered_effect(row),
            )
    weight_col = LABEL_WEIGHT if LABEL_WEIGHT in labelled.columns else None
    effect = None
    # Persisted: the history is redacted once for the labels, the fit and the calibration.
    labelled = labelled.persist()
    try:
        classifier = train_text_classifier(
            labelled, text_col, label_col, params=params, weight_col=weight_col
        )
        if weight_col and stats.human_labels and coded_label_col:
            effect = human_label_effect(
                labelled, text_col, coded_label_col, coded_labels, classifier, params
            )
    finally:
        labelled.unpersist()
    model_id = describe_model(classifier, window)
    # A folder of its own per training (concurrent runs never write into one another's), saved
    # before the registry row that points at it.
    path = (
        f"{lakehouse.base}/models/history/{task}/{window.week_start.isoformat()}/"
        f"{key[:16]}-{uuid.uuid4().hex[:8]}"
    )
    classifier.pipeline.write().overwrite().save(path)
    # Written once and not joined: createDataFrame's RDD (local_frame's job would buy nothing).
    record = spark.createDataFrame(
        [
            (
                task,
                window.week_start,
                window.first,
                window.last,
                key,
                model_id,
                path,
                list(classifier.labels),
                list(classifier.context_cols),
                float(classifier.temperature),
                stats.rows,
                classifier.training_rows,
                classifier.calibration_rows,
                classifier.holdout_accuracy,
                classifier.holdout_log_loss,
                json.dumps(asdict(params), sort_keys=True),
                ",".join(code_version(m) for m in _TRAINING_CODE),
                run_id,
                datetime.now(UTC).replace(tzinfo=None),
                *(
                    (None,) * len(_EFFECT_COLUMNS)
                    if effect is None
                    else (
                        effect.human_labels,
                        effect.weight,
                        effect.human_labels_held_out,
                        effect.held_out,
                        effect.accuracy_with,
                        effect.accuracy_without,
                    )
                ),
            )
        ],
        f"{_SCHEMA}, {_EFFECT_SCHEMA}",
    )
    lakehouse.append(record, HISTORY_MODELS, partitioned=False)
    return HistoryModel(classifier, model_id, key, window, trained_now=True, effect=effect)
