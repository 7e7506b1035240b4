"""The history models' registry: one model per task, week and training content, trained once.

A history model (``transforms/mllib_classifier.py``) serves every date of a week
(``transforms/training_window.py``). Before training, its labelled history is fingerprinted (the
rows' text and label, order-free, with the redaction names, the classifier's parameters and the
code that trains it); a model already registered under that key in ``ops.history_models`` is
loaded, not retrained. Otherwise it is trained, saved under ``LAKEHOUSE_ROOT/models/history/`` and
registered with its training window and metrics. Training is a function of the rows' values alone,
so two lakehouses (or a ranged run and the dates run one by one) that hold the same history train
the same model; the registry saves the retraining, it is not what makes results agree.

History that changes later (a date re-landed and recomputed) changes the fingerprint: the next
date scored trains and registers a new model for the week. Nothing is deleted.
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
_HEX_DIGITS = 15  # 60-bit slices of a SHA-256: their sums fit decimal(38,0)
# What trains a model: a change to any of these (or what they import) retrains.
_TRAINING_CODE = ("transforms.mllib_classifier", "transforms.enrich")


@dataclass(frozen=True)
class HistoryStats:
    """The labelled history of a window: its rows, labels, and a fingerprint of its content."""

    rows: int
    labels: int
    fingerprint: str


@dataclass(frozen=True)
class HistoryModel:
    """A registered model: what scores the window's week, what it is called, where it came from.

    ``trained_now`` is False when it was loaded from the registry.
    """

    classifier: TrainedClassifier
    model_id: str
    model_key: str
    window: TrainingWindow
    trained_now: bool


def history_stats(labelled: DataFrame, text: Column, label_col: str) -> HistoryStats:
    """Rows, distinct labels and an order-free content fingerprint, in one aggregation.

    The fingerprint is the count and two sums of 60-bit slices of each row's SHA-256 over its
    text and label: the same rows in any order, files or partitions give the same fingerprint.
    """
    digest = F.sha2(F.concat_ws("\u001f", F.coalesce(text, F.lit("\u0000")), F.col(label_col)), 256)

    def slice_sum(start: int) -> Column:
        part = F.conv(F.substring(digest, start, _HEX_DIGITS), 16, 10).cast("decimal(38,0)")
        return F.coalesce(F.sum(part), F.lit(0)).cast("string")

    row = labelled.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(label_col).alias("labels"),
        slice_sum(1).alias("a"),
        slice_sum(1 + _HEX_DIGITS).alias("b"),
    ).first()
    fingerprint = f"{row['rows']}:{row['a']}:{row['b']}"
    return HistoryStats(int(row["rows"]), int(row["labels"]), fingerprint)


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
        spark, HISTORY_MODELS, _COLUMNS, equals={"task": task, "model_key": key}
    )
    return max(rows, key=lambda r: r["trained_at"]) if rows else None


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
) -> HistoryModel:
    """The model registered under ``key`` (``model_key``), else trained on ``labelled`` and
    registered.

    ``labelled`` is the window's labelled history with its (redacted) text in ``text_col``; it is
    read only when the model has to be trained.
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
            return HistoryModel(classifier, row["model_id"], key, window, trained_now=False)
    # Persisted: the history is redacted once for the labels, the fit and the calibration.
    labelled = labelled.persist()
    try:
        classifier = train_text_classifier(labelled, text_col, label_col, params=params)
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
            )
        ],
        _SCHEMA,
    )
    lakehouse.append(record, HISTORY_MODELS, partitioned=False)
    return HistoryModel(classifier, model_id, key, window, trained_now=True)
