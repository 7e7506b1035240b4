"""Classifier quality on public labelled data: the Spark MLlib model vs the embedded default.

Reads ``../shared/data`` (see its README) and prints, for each dataset and classifier: rows,
classes, accuracy, macro-F1, expected calibration error (10 bins) before and after temperature
scaling, training and scoring wall time, and the share of rows a confidence threshold would route
to the LLM with the accuracy on the rows kept. Not a test: run on demand.

  * Birmingham purchase cards: train on transactions dated 2014-2015, test on 2016; predict the
    expense account (``trans_cac_desc_1``) from the merchant name, the VAT code and the
    (normalised) directorate. Temperature fitted on the last quarter of 2015, out of time, then
    the model is refitted on all of 2014-2015 with that temperature.
  * BANKING77: k-fold cross-validation of ``text`` → ``category`` (metrics pooled over the
    out-of-fold predictions); temperature fitted on a random 15% of each fold's training rows.

The embedded similarity classifier needs no training: its taxonomy is the label names (words of
the name as description); it is scored on the same test rows.

Usage: .venv/bin/python benchmarks/classifier_quality.py [--threshold 0.5] [--folds 5]
           [--sample 1.0]
"""

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from enrichment.models import Label, Taxonomy
from enrichment.providers.embedded import LabelSimilarityClassifier
from infra.spark import build_spark_session
from transforms.mllib_classifier import (
    CONFIDENCE,
    NEEDS_LLM,
    PREDICTED_LABEL,
    ClassifierParams,
    TrainedClassifier,
    expected_calibration_error,
    predict_labels,
    route_by_confidence,
    train_text_classifier,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BIRMINGHAM = DATA / "birmingham_pcard" / "birmingham_pcard_2014_2016.csv"
BANKING77 = DATA / "banking77" / "train.csv"

# UK data: day before month wherever the two could be confused.
DATE_FORMATS = (
    "yyyy-MM-dd HH:mm:ss",
    "yyyy-MM-dd'T'HH:mm:ss",
    "yyyy-MM-dd",
    "dd/MM/yyyy HH:mm:ss",
    "dd/MM/yyyy HH:mm",
    "dd/MM/yyyy",
    "dd/MM/yy",
    "dd-MMM-yyyy",
    "dd-MMM-yy",
    "dd.MM.yyyy",
)
# Directorate spellings seen in the files, after upper-casing and collapsing whitespace.
DIRECTORATES = {
    "CYO&F": "CYP&F",
    "ADULTS": "ADULT & COMMUNITIES",
    "ADULTS & COMMS": "ADULT & COMMUNITIES",
    "ADULTS & COMMUNITIES": "ADULT & COMMUNITIES",
}
# Folding the ~50 accounts with fewer than 20 rows into "other" costs no accuracy here and
# shortens training; the other settings are the defaults (chosen on these two datasets).
BIRMINGHAM_PARAMS = ClassifierParams(min_label_count=20)
BANKING77_PARAMS = ClassifierParams()


@dataclass
class Result:
    """One row of the printed table."""

    dataset: str
    model: str
    train_rows: str
    test_rows: int
    classes: int
    accuracy: float
    macro_f1: float
    ece_raw: float
    ece_calibrated: float | None
    temperature: float | None
    train_s: float
    score_s: float
    routed: float
    kept_accuracy: float | None


def parse_date(raw: Column) -> Column:
    """The first of ``DATE_FORMATS`` that parses, else an Excel serial day number, else null."""
    text = F.trim(raw)
    parsed = [F.try_to_timestamp(text, F.lit(fmt)) for fmt in DATE_FORMATS]
    serial = F.when(
        text.rlike(r"^\d{5}(\.\d+)?$"),
        F.date_add(F.lit("1899-12-30").cast("date"), F.floor(text.cast("double")).cast("int")),
    )
    return F.coalesce(*parsed, serial.cast("timestamp")).cast("date")


def normalized_directorate(raw: Column) -> Column:
    """Upper case, whitespace collapsed, known misspellings mapped to one name."""
    name = F.upper(F.regexp_replace(F.trim(raw), r"\s+", " "))
    mapping = F.create_map(*[F.lit(x) for kv in DIRECTORATES.items() for x in kv])
    return F.coalesce(mapping[name], name)


def load_birmingham(spark: SparkSession, sample: float) -> DataFrame:
    """Purchase-card rows with a parsed ``tx_date`` and a normalised ``directorate_norm``."""
    df = spark.read.csv(str(BIRMINGHAM), header=True, escape='"', multiLine=True)
    if sample < 1.0:
        df = df.sample(fraction=sample, seed=11)
    shapes = Counter(
        r["shape"]
        for r in df.select(F.regexp_replace("trans_date", r"\d", "9").alias("shape")).collect()
    )
    print(f"birmingham trans_date shapes: {dict(shapes.most_common(5))}")
    return df.withColumns(
        {
            "tx_date": parse_date(F.col("trans_date")),
            "directorate_norm": normalized_directorate(F.col("directorate")),
        }
    )


def classes_and_metrics(scored: DataFrame, label_col: str) -> tuple[int, float, float]:
    """Number of true classes, accuracy and macro-F1 (over labels true or predicted)."""
    pairs = (
        scored.where(F.col(label_col).isNotNull())
        .groupBy(F.col(label_col).alias("y"), F.col(PREDICTED_LABEL).alias("p"))
        .count()
        .collect()
    )
    truth, predicted, hits = Counter(), Counter(), Counter()
    for r in pairs:
        truth[r["y"]] += r["count"]
        predicted[r["p"]] += r["count"]
        if r["y"] == r["p"]:
            hits[r["y"]] += r["count"]
    labels = (set(truth) | set(predicted)) - {None}
    f1 = [2 * hits[c] / (truth[c] + predicted[c]) for c in labels]
    return len(truth), sum(hits.values()) / sum(truth.values()), sum(f1) / len(f1)


def routing(scored: DataFrame, label_col: str, threshold: float) -> tuple[float, float | None]:
    """Share of rows routed to the LLM and the accuracy on the rows kept."""
    row = (
        scored.where(F.col(label_col).isNotNull())
        .transform(route_by_confidence(threshold))
        .agg(
            F.avg(F.col(NEEDS_LLM).cast("double")).alias("routed"),
            F.avg(
                F.when(~F.col(NEEDS_LLM), (F.col(PREDICTED_LABEL) == F.col(label_col)).cast("int"))
            ).alias("kept"),
        )
        .first()
    )
    return row["routed"], row["kept"]


def mllib_scores(
    model: TrainedClassifier, test: DataFrame, text_col: str
) -> tuple[DataFrame, DataFrame, float]:
    """Calibrated and raw predictions (cached) and the scoring wall time of the calibrated."""
    started = time.perf_counter()
    calibrated = predict_labels(model, test, text_col).cache()
    calibrated.count()
    score_s = time.perf_counter() - started
    raw = predict_labels(replace(model, temperature=1.0), test, text_col).cache()
    return calibrated, raw, score_s


def embedded_scores(
    spark: SparkSession, labels: list[str], test: DataFrame, text_col: str, label_col: str
) -> tuple[DataFrame, float]:
    """The embedded similarity classifier on the test rows (taxonomy: the label names)."""
    taxonomy = Taxonomy(
        name="bench", labels=tuple(Label(x, x.replace("_", " ")) for x in sorted(labels))
    )
    rows = test.select(text_col, label_col).collect()
    started = time.perf_counter()
    classifier = LabelSimilarityClassifier(taxonomy)
    answers = [classifier.predict(r[text_col] or "") for r in rows]
    score_s = time.perf_counter() - started
    frame = pd.DataFrame(
        {
            label_col: [r[label_col] for r in rows],
            PREDICTED_LABEL: [a[0] for a in answers],
            CONFIDENCE: [a[1] for a in answers],
        }
    )
    return spark.createDataFrame(frame), score_s


def result(
    dataset: str,
    model: str,
    scored: DataFrame,
    label_col: str,
    threshold: float,
    **figures,
) -> Result:
    """Accuracy, macro-F1, ECE and routing of ``scored``, with the given timings and sizes."""
    classes, accuracy, macro_f1 = classes_and_metrics(scored, label_col)
    routed, kept = routing(scored, label_col, threshold)
    ece = expected_calibration_error(scored, label_col, PREDICTED_LABEL, CONFIDENCE)
    raw = figures.pop("raw", None)
    ece_raw = (
        ece
        if raw is None
        else expected_calibration_error(raw, label_col, PREDICTED_LABEL, CONFIDENCE)
    )
    return Result(
        dataset=dataset,
        model=model,
        test_rows=scored.where(F.col(label_col).isNotNull()).count(),
        classes=classes,
        accuracy=accuracy,
        macro_f1=macro_f1,
        ece_raw=ece_raw,
        ece_calibrated=ece if raw is not None else None,
        routed=routed,
        kept_accuracy=kept,
        **figures,
    )


def birmingham(spark: SparkSession, threshold: float, sample: float) -> list[Result]:
    """Train on 2014-2015, test on 2016; temperature from Q4 2015, then refit on 2014-2015."""
    df = load_birmingham(spark, sample)
    label, text, context = (
        "trans_cac_desc_1",
        "merchant_name",
        ("trans_vat_desc", "directorate_norm"),
    )
    unparsed = df.where(F.col("tx_date").isNull()).count()
    history = df.where(F.year("tx_date") <= 2015).cache()
    test = df.where((F.year("tx_date") == 2016) & F.col(label).isNotNull()).cache()
    print(
        f"birmingham: {unparsed} unparsed dates; history {history.count():,} rows "
        f"(2014-2015), test {test.count():,} rows (2016)"
    )
    seen = history.select(text).distinct().withColumn("seen", F.lit(True))
    new_merchants = test.join(seen, text, "left").agg(F.avg(F.col("seen").isNull().cast("int")))
    print(f"birmingham drift: {new_merchants.first()[0]:.1%} of 2016 rows have a merchant unseen")
    started = time.perf_counter()
    cut = F.col("tx_date") < F.lit("2015-10-01").cast("date")
    calibrated_on_q4 = train_text_classifier(
        history.where(cut),
        text,
        label,
        context_cols=context,
        params=BIRMINGHAM_PARAMS,
        calibration=history.where(~cut),
    )
    refitted = train_text_classifier(
        history, text, label, context_cols=context, params=BIRMINGHAM_PARAMS, calibration_fraction=0
    )
    model = replace(refitted, temperature=calibrated_on_q4.temperature)
    train_s = time.perf_counter() - started
    scored, raw, score_s = mllib_scores(model, test, text)
    lr = result(
        "birmingham 2016",
        "mllib-lr",
        scored,
        label,
        threshold,
        raw=raw,
        train_rows=f"{model.training_rows:,}",
        temperature=model.temperature,
        train_s=train_s,
        score_s=score_s,
    )
    labels = [
        r[0] for r in history.where(F.col(label).isNotNull()).select(label).distinct().collect()
    ]
    embedded, embedded_s = embedded_scores(spark, labels, test, text, label)
    sim = result(
        "birmingham 2016",
        "embedded-sim",
        embedded,
        label,
        threshold,
        train_rows="0",
        temperature=None,
        train_s=0.0,
        score_s=embedded_s,
    )
    return [lr, sim]


def banking77(spark: SparkSession, threshold: float, folds: int) -> list[Result]:
    """k-fold cross-validation; metrics over the pooled out-of-fold predictions."""
    label, text = "category", "text"
    df = spark.read.csv(str(BANKING77), header=True, escape='"', multiLine=True)
    df = df.withColumn("fold", F.pmod(F.xxhash64(text, label), F.lit(folds))).cache()
    train_s = score_s = 0.0
    temperatures, train_rows, calibrated, raw = [], [], [], []
    for k in range(folds):
        started = time.perf_counter()
        model = train_text_classifier(
            df.where(F.col("fold") != k), text, label, params=BANKING77_PARAMS
        )
        train_s += time.perf_counter() - started
        fold_scored, fold_raw, fold_s = mllib_scores(model, df.where(F.col("fold") == k), text)
        score_s += fold_s
        temperatures.append(model.temperature)
        train_rows.append(model.training_rows + model.calibration_rows)
        calibrated.append(fold_scored)
        raw.append(fold_raw)
        print(
            f"banking77 fold {k + 1}/{folds}: fitted on {model.training_rows:,} rows, "
            f"T={model.temperature:.2f} from {model.calibration_rows:,} held out",
            flush=True,
        )
    union = calibrated[0]
    union_raw = raw[0]
    for part, part_raw in zip(calibrated[1:], raw[1:], strict=True):
        union, union_raw = union.unionByName(part), union_raw.unionByName(part_raw)
    lr = result(
        f"banking77 {folds}-fold",
        "mllib-lr",
        union,
        label,
        threshold,
        raw=union_raw,
        train_rows=f"{sum(train_rows) // folds:,}x{folds}",
        temperature=sum(temperatures) / folds,
        train_s=train_s,
        score_s=score_s,
    )
    labels = [r[0] for r in df.select(label).distinct().collect()]
    embedded, embedded_s = embedded_scores(spark, labels, df, text, label)
    sim = result(
        "banking77 all rows",
        "embedded-sim",
        embedded,
        label,
        threshold,
        train_rows="0",
        temperature=None,
        train_s=0.0,
        score_s=embedded_s,
    )
    return [lr, sim]


def print_table(results: list[Result], threshold: float) -> None:
    """One line per dataset and model."""

    def opt(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    header = (
        f"{'dataset':<20} {'model':<13} {'train':>9} {'test':>7} {'cls':>4} {'acc':>6} "
        f"{'macroF1':>7} {'ECEraw':>7} {'ECEcal':>7} {'T':>5} {'train s':>8} {'score s':>8} "
        f"{f'LLM@{threshold}':>8} {'acc kept':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.dataset:<20} {r.model:<13} {r.train_rows:>9} {r.test_rows:>7,} {r.classes:>4} "
            f"{r.accuracy:>6.3f} {r.macro_f1:>7.3f} {r.ece_raw:>7.3f} "
            f"{opt(r.ece_calibrated, '.3f'):>7} {opt(r.temperature, '.2f'):>5} "
            f"{r.train_s:>8.1f} {r.score_s:>8.1f} {r.routed:>8.1%} {opt(r.kept_accuracy, '.3f'):>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.5, help="route below this confidence")
    parser.add_argument("--folds", type=int, default=5, help="BANKING77 cross-validation folds")
    parser.add_argument("--sample", type=float, default=1.0, help="share of Birmingham rows")
    args = parser.parse_args()
    missing = [p for p in (BIRMINGHAM, BANKING77) if not p.is_file()]
    if missing:
        sys.exit(f"public sample data not found: {', '.join(map(str, missing))} (see {DATA})")
    workdir = Path(tempfile.mkdtemp(prefix="bench-classifier-"))
    spark = build_spark_session(
        "local[*]",
        str(workdir / "warehouse"),
        extra_conf={
            "spark.sql.shuffle.partitions": "4",
            "spark.ui.enabled": "false",
            "spark.driver.memory": "4g",
        },
    )
    spark.sparkContext.setLogLevel("ERROR")
    results = birmingham(spark, args.threshold, args.sample)
    results += banking77(spark, args.threshold, args.folds)
    print()
    print_table(results, args.threshold)


if __name__ == "__main__":
    main()
