"""A model trained on labelled history answers first; only its doubtful rows reach the LLM."""

import shutil
from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from enrichment.prompts import EXPENSE_LINE_TASK
from enrichment.providers.embedded import EMBEDDED_MODEL_ID, EXTRACTIVE_SUMMARY_ID
from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from infra.enrichment import EnrichmentResource
from infra.history_models import HISTORY_MODELS
from infra.lakehouse import LakehouseResource
from infra.settings import HUMAN_LABEL_WEIGHT
from sample import expenses as sample_data
from tests.enrichment.fake_openai import Fault
from transforms.expenses import LABEL_HISTORY_DAYS, expense_text
from transforms.frames import local_frame
from transforms.human_labels import HISTORY_LABEL, with_human_labels
from transforms.review import DECISION_SCHEMA, key_json
from transforms.training_window import training_window

DAY = date(2026, 5, 11)
COLUMNS = "report_id string, line_id string, merchant string, justification string, "
COLUMNS += "claimed_category string, business_date date"


def _lines(spark, days: list[date], rows: int):
    data = [
        (r["report_id"], r["line_id"], r["merchant"], r["justification"], r["claimed_category"], d)
        for d in days
        for r in sample_data.build_day(d, rows, seed=11, bad_share=0.0).lines
        if isinstance(r, dict)
    ]
    return local_frame(spark, data, COLUMNS)


@pytest.fixture(scope="module")
def history(spark):
    return _lines(spark, [DAY - timedelta(days=n) for n in range(1, 6)], 80)


@pytest.fixture(scope="module")
def today(spark):
    return _lines(spark, [DAY], 40)


def _run(resource, today, history, run_id, day=DAY):
    return resource.enrich_with_history(
        LakehouseResource(),
        today,
        expense_text(),
        EXPENSE_LINE_TASK,
        day,
        run_id,
        history=history,
        label_col="claimed_category",
        window=training_window(day, LABEL_HISTORY_DAYS),
    )


@pytest.fixture(scope="module")
def trained(spark, history, today, tmp_path_factory):
    """The offline run that trains the week's model on a new lakehouse, and that lakehouse: the
    model is trained once in this file, and the routing tests start from a copy of it, as a run
    later in the week does (it loads the registered model)."""
    root = tmp_path_factory.mktemp("trained") / "lakehouse"
    root.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_ROOT", str(root))
        patch.delenv("OPENAI_API_KEY", raising=False)
        run = _run(EnrichmentResource(), today, history, "run-history")
        rows = run.rows.collect()
    return root, run, rows


@pytest.fixture
def with_the_weeks_model(trained, lakehouse_root):
    """A lakehouse holding the trained run's registry (the model is loaded, not trained)."""
    shutil.copytree(trained[0], lakehouse_root, dirs_exist_ok=True)
    return trained[1].history_model


def test_offline_the_history_model_answers_every_row(
    spark, trained, history, today, with_the_weeks_model
):
    _, run, rows = trained
    assert sorted((r["report_id"], r["line_id"]) for r in rows) == sorted(
        (r["report_id"], r["line_id"]) for r in today.collect()
    )
    assert run.history_model and run.history_model.startswith("spark-ml/tfidf-logreg")
    assert run.model_labelled == len(rows)
    for r in rows:
        assert (r["source"], r["enrichment_status"]) == ("model", "ok")
        assert r["model"].startswith("spark-ml/") and r["model"].endswith("extractive-summary-v1")
        assert r["label"] in EXPENSE_LINE_TASK.taxonomy.names
        assert 0 < r["confidence"] <= 1 and r["summary"]
        assert r["prompt_version"] is None and r["tokens_in"] == 0
    # Coded history teaches what the label descriptions alone do not: most claims agree.
    agree = sum(r["label"] == r["claimed_category"] for r in rows) / len(rows)
    assert agree >= 0.8
    # Trained once for the week and registered, with its window and metrics.
    assert run.history_model_trained
    window = f"{DAY - timedelta(days=LABEL_HISTORY_DAYS)}..{DAY - timedelta(days=1)}"
    assert window in run.history_model
    [registered] = LakehouseResource().read_rows(
        spark,
        HISTORY_MODELS,
        ["week_start", "window_first", "window_last", "model_id", "training_rows"],
    )
    assert registered["week_start"] == DAY and registered["window_last"] == DAY - timedelta(days=1)
    assert registered["model_id"] == run.history_model and registered["training_rows"] > 0
    # Wednesday, in another run (a new resource), with the week's own dates in its history: they
    # are outside the window, so the registered model is loaded, not retrained.
    wednesday = _run(
        EnrichmentResource(), today, history.unionByName(today), "run-wed", DAY + timedelta(days=2)
    )
    assert not wednesday.history_model_trained
    assert wednesday.history_model == run.history_model

    def answers(rows):
        return sorted((r["report_id"], r["line_id"], r["label"], r["confidence"]) for r in rows)

    assert answers(wednesday.rows.collect()) == answers(rows)
    assert len(LakehouseResource().read_rows(spark, HISTORY_MODELS, ["model_key"])) == 1


def test_too_little_history_falls_back_to_the_provider(spark, lakehouse_root, history, today):
    resource = EnrichmentResource(history_min_rows=10_000)
    run = _run(resource, today, history, "run-short")
    assert run.history_model is None
    assert {r["model"] for r in run.rows.collect()} == {EMBEDDED_MODEL_ID}


def test_only_doubtful_rows_are_sent_to_the_llm(
    spark, with_the_weeks_model, history, today, fake_openai
):
    resource = EnrichmentResource(
        api_key="sk-test", base_url=fake_openai.base_url, route_below_confidence=0.9
    )
    run = _run(resource, today, history, "run-routed")
    assert run.history_model == with_the_weeks_model and not run.history_model_trained
    rows = {(r["report_id"], r["line_id"]): r for r in run.rows.collect()}
    assert len(rows) == today.count()
    by_source = {}
    for r in rows.values():
        by_source.setdefault(r["source"], []).append(r)
    assert set(by_source) == {"model", "llm"}, "a 0.9 bar keeps some rows local and sends some"
    assert all(r["confidence"] >= 0.9 for r in by_source["model"])
    sent = {i for req in fake_openai.chat_requests() for i in req.record_ids}
    assert sent == {r["input_hash"] for r in by_source["llm"]}
    assert run.model_labelled == len(by_source["model"])
    assert all(r["model"] == "gpt-4o-mini" for r in by_source["llm"])
    assert run.rows.where(F.col("enrichment_status") != "ok").count() == 0


def test_a_broken_endpoint_falls_back_to_the_history_model_first(
    spark, with_the_weeks_model, history, today, fake_openai
):
    # Every request fails: the breaker stops sending, and the doubtful rows take the history
    # model's own answer (it had scored them), not the embedded similarity classifier's.
    fake_openai.fail_always(Fault.http(500))
    resource = EnrichmentResource(
        api_key="sk-test",
        base_url=fake_openai.base_url,
        route_below_confidence=0.9,
        backoff_base_s=0.01,  # retries' waits are not under test here
        backoff_max_s=0.05,
    )
    run = _run(resource, today, history, "run-broken")
    assert run.history_model == with_the_weeks_model and not run.history_model_trained
    rows = run.rows.collect()
    assert len(rows) == today.count() and run.fallback_rows > 0
    fell_back = [r for r in rows if r["error"] and r["error"].startswith(FALLBACK_ERROR_PREFIX)]
    assert len(fell_back) == run.fallback_rows
    assert all(r["enrichment_status"] == "ok" for r in rows)
    # The history model's answer (its summary is the extractive one, which the model id says).
    assert {(r["source"], r["model"]) for r in fell_back} == {
        ("model", f"{run.history_model}+{EXTRACTIVE_SUMMARY_ID}")
    }
    assert all(r["confidence"] < 0.9 for r in fell_back), "they were the model's doubtful rows"
    assert len(fake_openai.chat_requests()) <= resource.breaker_failures * 4


def test_reviewers_labels_train_the_model_and_their_effect_is_registered(
    spark, lakehouse_root, history, today
):
    # Employees mis-coded every tenth claim as "other"; a reviewer put the right label back.
    wrong = F.pmod(F.xxhash64("report_id", "line_id", "business_date"), 10) == 0
    decided = history.where(wrong).select(
        key_json(["report_id", "line_id"]).alias("key"), "business_date", "claimed_category"
    )
    decisions = [
        (
            f"d{i}",
            "expense_lines",
            r["key"],
            r["business_date"],
            "spend_category",
            "overridden",
            "other",
            r["claimed_category"],
            "mis-coded",
            "alice",
            "analyst",
            datetime(2026, 5, 1),
            "m",
            "v1",
            0.4,
        )
        for i, r in enumerate(decided.collect())
    ]
    miscoded = history.withColumn(
        "claimed_category", F.when(wrong, F.lit("other")).otherwise(F.col("claimed_category"))
    ).transform(
        with_human_labels(
            local_frame(spark, decisions, DECISION_SCHEMA),
            "expense_lines",
            ("report_id", "line_id"),
            "spend_category",
            "claimed_category",
            HUMAN_LABEL_WEIGHT,
        )
    )
    run = EnrichmentResource().enrich_with_history(
        LakehouseResource(),
        today,
        expense_text(),
        EXPENSE_LINE_TASK,
        DAY,
        "run-learn",
        history=miscoded,
        label_col=HISTORY_LABEL,
        coded_label_col="claimed_category",
        window=training_window(DAY, LABEL_HISTORY_DAYS),
    )
    learning = run.history_model_learning
    assert learning["history_model_human_labels"] == len(decisions) > 0
    assert learning["history_model_human_label_weight"] == HUMAN_LABEL_WEIGHT
    compared = learning["history_model_holdout_rows_compared"]
    assert compared > learning["history_model_human_labels_held_out"] > 0
    with_human = learning["history_model_holdout_accuracy_with_human_labels"]
    without = learning["history_model_holdout_accuracy_without_human_labels"]
    assert 0 <= without < with_human <= 1, "the corrected labels are learnt"
    [registered] = LakehouseResource().read_rows(
        spark,
        HISTORY_MODELS,
        ["human_labels", "holdout_accuracy_with_human_labels"],
    )
    assert registered == {
        "human_labels": len(decisions),
        "holdout_accuracy_with_human_labels": with_human,
    }
