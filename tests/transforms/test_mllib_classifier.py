"""The MLlib text classifier: separable classes, row-preserving scoring, calibration, routing."""

import math
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sample import expenses as sample_data
from transforms.frames import local_frame
from transforms.mllib_classifier import (
    ClassifierParams,
    TrainedClassifier,
    expected_calibration_error,
    fit_temperature,
    held_out_rows,
    predict_labels,
    route_by_confidence,
    softmax_confidence,
    train_text_classifier,
)

HISTORY = [
    ("uber taxi to the airport", "transport"),
    ("taxi ride to client", "transport"),
    ("train ticket rail", "transport"),
    ("rail ticket return", "transport"),
    ("marriott hotel room", "lodging"),
    ("hotel room two nights", "lodging"),
    ("hilton hotel stay", "lodging"),
    ("room nights inn", "lodging"),
    ("team lunch restaurant", "meals"),
    ("client dinner restaurant", "meals"),
    ("coffee and lunch", "meals"),
    ("dinner with the team", "meals"),
    # Left out of training: no text, blank text, no label.
    (None, "meals"),
    ("   ", "meals"),
    ("taxi to the station", None),
]
CALIBRATION = [
    ("taxi ride", "transport"),
    ("hotel nights", "lodging"),
    ("restaurant lunch", "meals"),
    ("unknown", None),
]
SCHEMA = "text string, label string"


@pytest.fixture(scope="module")
def model(spark: SparkSession) -> TrainedClassifier:
    return train_text_classifier(
        local_frame(spark, HISTORY, SCHEMA),
        "text",
        "label",
        params=ClassifierParams(min_df=1, max_iter=10),
        calibration=local_frame(spark, CALIBRATION, SCHEMA),
    )


def test_training_skips_rows_without_text_or_label(model: TrainedClassifier):
    assert model.training_rows == 12
    assert sorted(model.labels) == ["lodging", "meals", "transport"]
    assert model.calibration_rows == 3
    assert 0.05 <= model.temperature <= 20


def test_separates_clearly_separable_classes(spark: SparkSession, model: TrainedClassifier):
    new = local_frame(
        spark,
        [(1, "taxi to the office"), (2, "hotel room for one night"), (3, "lunch at a restaurant")],
        "id int, text string",
    )
    out = {r["id"]: r for r in predict_labels(model, new, "text").collect()}
    assert [out[i]["predicted_label"] for i in (1, 2, 3)] == ["transport", "lodging", "meals"]
    assert all(out[i]["confidence"] > 1 / 3 for i in (1, 2, 3))


def test_scoring_keeps_every_row_in_order_and_nulls_text_without_words(
    spark: SparkSession, model: TrainedClassifier
):
    rows = [(5, "rail ticket"), (3, None), (9, "hotel"), (1, "  "), (7, "dinner")]
    df = local_frame(spark, rows, "id int, text string")
    out = predict_labels(model, df, "text")
    assert out.columns == ["id", "text", "predicted_label", "confidence"]
    assert dict(out.dtypes)["confidence"] == "double"
    collected = out.collect()
    assert [(r["id"], r["text"]) for r in collected] == rows
    by_id = {r["id"]: (r["predicted_label"], r["confidence"]) for r in collected}
    assert by_id[3] == by_id[1] == (None, None)
    assert all(0.0 <= by_id[i][1] <= 1.0 for i in (5, 9, 7))


def test_calibration_rescales_confidence_without_changing_labels(
    spark: SparkSession, model: TrainedClassifier
):
    df = local_frame(spark, [(1, "taxi"), (2, "hotel room")], "id int, text string")
    sharp = predict_labels(replace(model, temperature=0.5), df, "text").orderBy("id").collect()
    soft = predict_labels(replace(model, temperature=4.0), df, "text").orderBy("id").collect()
    assert [r["predicted_label"] for r in sharp] == [r["predicted_label"] for r in soft]
    assert all(s["confidence"] < h["confidence"] for s, h in zip(soft, sharp, strict=True))


def test_fit_temperature_recovers_the_calibrating_temperature():
    # Every row has margins (4, 0) and 75% are class 0: softmax(4 / T) must be 0.75.
    logits = np.tile([4.0, 0.0], (8, 1))
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(4 / math.log(3), rel=1e-3)
    assert softmax_confidence(logits, temperature)[0] == pytest.approx(0.75, abs=1e-3)


def test_ece_is_zero_when_calibrated_and_the_gap_when_over_confident(spark: SparkSession):
    schema = "label string, pred string, conf double"
    calibrated = [
        *[("a", "a", 0.75)] * 3,
        ("b", "a", 0.75),  # the 0.75 bin: 3 of 4 right
        ("a", "a", 0.25),
        *[("a", "b", 0.25), ("b", "a", 0.25), ("a", "b", 0.25)],  # the 0.25 bin: 1 of 4 right
        ("x", None, None),  # unscored rows are left out
    ]
    # the top bin: 2 of 4 right at a mean confidence of 0.975
    over_confident = [("a", "a", 1.0), ("b", "a", 1.0), ("a", "a", 0.95), ("b", "a", 0.95)]
    ece = expected_calibration_error(
        local_frame(spark, calibrated, schema), "label", "pred", "conf"
    )
    assert ece == pytest.approx(0.0, abs=1e-12)
    over = local_frame(spark, over_confident, schema)
    assert expected_calibration_error(over, "label", "pred", "conf") == pytest.approx(0.475)


def test_routing_flags_low_and_missing_confidence(spark: SparkSession):
    df = local_frame(spark, [(1, 0.9), (2, 0.3), (3, None), (4, 0.5)], "id int, confidence double")
    out = df.transform(route_by_confidence(0.5)).orderBy("id").collect()
    assert [r["needs_llm"] for r in out] == [False, True, True, False]
    with pytest.raises(ValueError, match="threshold"):
        route_by_confidence(1.5)


def test_training_needs_two_labels(spark: SparkSession):
    one_label = local_frame(spark, [("taxi", "transport"), ("train", "transport")], SCHEMA)
    with pytest.raises(ValueError, match="two labels"):
        train_text_classifier(one_label, "text", "label")


def test_the_same_rows_stored_differently_train_the_same_model(spark: SparkSession):
    # A ranged run writes a history in one Delta commit, dates run one by one in several: the
    # same rows then come in other files, partitions and order. The model (its random hold-out,
    # its sums) must not depend on that, or the two close different gold (bench-backfill).
    days = [date(2026, 5, 4) + timedelta(days=n) for n in range(3)]
    rows = [
        (f"{r['merchant']} {r['justification']}", r["claimed_category"], d.isoformat())
        for d in days
        for r in sample_data.build_day(d, 60, seed=11, bad_share=0.0).lines
        if isinstance(r, dict)
    ]
    schema = "text string, label string, day string"
    one_file = local_frame(spark, rows, schema).coalesce(1)
    by_date = local_frame(spark, list(reversed(rows)), schema).repartition(3, "day")
    today = local_frame(spark, rows[::7], schema)
    params = ClassifierParams(max_iter=20)
    fitted = []
    for history in (one_file, by_date):
        model = train_text_classifier(history, "text", "label", params=params)
        scored = predict_labels(model, today, "text").orderBy("text", "label").collect()
        fitted.append(
            (
                model.labels,
                model.training_rows,
                model.calibration_rows,
                model.temperature,
                [(r["predicted_label"], r["confidence"]) for r in scored],
            )
        )
    assert fitted[0][2] > 0, "some rows are held out for calibration"
    assert fitted[0] == fitted[1]


def test_a_heavier_row_outweighs_lighter_ones_and_the_hold_out_ignores_labels(
    spark: SparkSession,
):
    # The same words coded "transport" by employees twice and "lodging" once by a reviewer,
    # whose label weighs more: weighted, the reviewer's label wins.
    rows = [(t, y, 1.0) for t, y in HISTORY[:12]] + [
        ("airport hotel shuttle", "transport", 1.0),
        ("airport hotel shuttle", "transport", 1.0),
        ("airport hotel shuttle", "lodging", 5.0),
    ]
    history = local_frame(spark, rows, "text string, label string, weight double")
    params = ClassifierParams(min_df=1, max_iter=30)
    today = local_frame(spark, [("airport hotel shuttle", None)], SCHEMA)

    def label(weight_col):
        model = train_text_classifier(
            history, "text", "label", params=params, weight_col=weight_col, calibration_fraction=0
        )
        return predict_labels(model, today, "text").first()["predicted_label"]

    assert (label(None), label("weight")) == ("transport", "lodging")
    # The held-out slice depends on the text, not the label: relabelled rows stay on their side.
    relabelled = history.withColumn("label", F.lit("meals"))
    assert sorted(held_out_rows(history, "text").select("text").collect()) == sorted(
        held_out_rows(relabelled, "text").select("text").collect()
    )
