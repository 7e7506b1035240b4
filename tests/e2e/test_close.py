"""The whole nightly close through Dagster, checked against the generator's answer key.

Three business dates (a month end, which is also a pay date, and the two days after) run as one
ranged run, as a backfill would run them. Every seeded anomaly must be reported and nothing else
(precision and recall 1.0), every deliberately bad row quarantined with its reason, and re-running
a date on its own must leave the reconciliation's gold unchanged.
"""

import json
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from pyspark.sql import functions as F

from assets.review_queue import OPEN_ITEMS_CHECK, OVERRIDE_RATE_CHECK
from enrichment.providers.embedded import EMBEDDED_MODEL_ID
from enrichment.taxonomies import EXCEPTION_REASON, HR_CASE_TYPE, HR_CASE_URGENCY
from infra import wap
from infra.lakehouse import LakehouseResource, TableRef
from infra.settings import review_thresholds
from infra.spark import SparkResource
from infra.versions import RECOMPUTE_TAG
from pipelines.definitions import all_assets, build_resources
from tests.e2e import test_hr_cases as hr
from tests.e2e.conftest import DAYS, FIRST, LAST
from transforms.review import key_json

pytestmark = pytest.mark.slow

EXCEPTIONS = TableRef("gold", "recon_exceptions")
RECON_STEPS = [
    AssetKey(k)
    for k in (
        "staging_recon_matches",
        "staging_recon_exceptions",
        "staging_close_summary",
        "gold_recon_matches",
        "gold_recon_exceptions",
        "gold_close_summary",
    )
]


def _key(root: Path, day: date) -> dict:
    return json.loads((root / "answer_keys" / "close" / f"{day.isoformat()}.json").read_text())


def _reported(spark, day: date) -> tuple[set, set]:
    rows = LakehouseResource().read_partition(spark, EXCEPTIONS, day).collect()
    opened = {
        (r["recon"], r["exception_type"], tuple(r["records"]))
        for r in rows
        if r["status"] == "open"
    }
    closed = {
        (r["recon"], r["exception_type"], tuple(r["records"]), r["resolution"])
        for r in rows
        if r["status"] == "closed"
    }
    return opened, closed


def test_every_seeded_anomaly_is_found_and_nothing_else(spark, closed):
    seen_types = set()
    for day in DAYS:
        key = _key(closed, day)
        expected_open = {
            (e["recon"], e["exception_type"], tuple(e["records"])) for e in key["open"]
        }
        expected_closed = {
            (e["recon"], e["exception_type"], tuple(e["records"]), e["resolution"])
            for e in key["closed"]
        }
        opened, closed_today = _reported(spark, day)
        assert opened == expected_open, (day, opened ^ expected_open)
        assert closed_today == expected_closed, (day, closed_today ^ expected_closed)
        seen_types |= {t for _, t, _ in opened}
    # The window holds anomalies of every reconciliation, so the equality above means something.
    print(sorted(seen_types))
    assert {"GL_NOT_IN_BANK", "BANK_NOT_IN_GL", "AMOUNT_MISMATCH"} <= seen_types
    assert seen_types & {"AP_NOT_IN_GL", "GL_NOT_IN_AP"}
    assert seen_types & {
        "PAID_UNKNOWN_EMPLOYEE",
        "PAID_NOT_ACTIVE",
        "ACTIVE_NOT_PAID",
        "PAY_VARIANCE",
        "DUPLICATE_PAYMENT",
    }
    assert seen_types & {
        "OVER_LIMIT",
        "DUPLICATE_CLAIM",
        "SPLIT_TRANSACTION",
        "WEEKEND_EXPENSE",
        "BLOCKED_MERCHANT",
    }
    # Every type of invoice documents ↔ AP: found in what the extraction read of the documents.
    assert {
        "DOC_AMOUNT_MISMATCH",
        "DOC_DATE_MISMATCH",
        "DOC_NOT_IN_AP",
        "AP_WITHOUT_DOC",
        "DUPLICATE_DOCUMENT",
    } <= seen_types
    # AP invoices due past their vendor's contract terms, as read from the contracts.
    assert "AP_TERMS_OUTSIDE_CONTRACT" in seen_types


def test_open_items_age_across_nights_and_close_with_a_date(spark, closed):
    exceptions = LakehouseResource().read(spark, EXCEPTIONS)
    carried = exceptions.where(F.col("age_days") > 0).where(F.col("status") == "open")
    assert carried.count() > 0
    for row in carried.collect():
        assert (row["business_date"] - row["first_seen_date"]).days == row["age_days"]
    closed_rows = exceptions.where(F.col("status") == "closed").collect()
    assert closed_rows and all(r["closed_on"] == r["business_date"] for r in closed_rows)


def test_quarantine_matches_the_answer_key_for_every_source(spark, closed):
    quarantine = LakehouseResource().read(spark, TableRef("silver", "quarantine"))
    for day in DAYS:
        expected = {
            (source, record_key.split("#")[0], reason)
            for source, rows in _key(closed, day)["quarantined"].items()
            for record_key, reason in rows.items()
        }
        got = {
            (r["source"], r["record_key"], r["reason_code"])
            for r in quarantine.where(F.col("business_date") == F.lit(day)).collect()
        }
        assert got == expected, (day, got ^ expected)


def test_every_source_conserves_rows_and_every_gold_table_was_published(spark, closed):
    lakehouse = LakehouseResource()
    quarantine = lakehouse.read(spark, TableRef("silver", "quarantine"))
    for source, count in _key(closed, LAST)["counts"].items():
        bronze = lakehouse.read_partition(spark, TableRef("bronze", source), LAST).count()
        silver = lakehouse.read_partition(spark, TableRef("silver", source), LAST).count()
        rejected = quarantine.where(
            (F.col("business_date") == F.lit(LAST)) & (F.col("source") == source)
        ).count()
        assert bronze == silver + rejected == count, source
    summary = lakehouse.read_partition(spark, TableRef("gold", "close_summary"), LAST)
    assert summary.where("recon = 'ap_gl' AND abs(ap_variance_unexplained) > 0.01").count() == 0
    assert {r["business_date"] for r in lakehouse.read(spark, EXCEPTIONS).collect()} == set(DAYS)


def test_open_exceptions_get_notes_and_a_carried_item_is_enriched_once(spark, closed):
    lakehouse = LakehouseResource()
    notes = lakehouse.read(spark, TableRef("gold", "recon_exception_notes"))
    exceptions = lakehouse.read(spark, EXCEPTIONS)
    previous: dict[str, tuple] = {}
    for day in DAYS:
        open_ids = {
            r["exception_id"]
            for r in exceptions.where(
                (F.col("business_date") == F.lit(day)) & (F.col("status") == "open")
            ).collect()
        }
        rows = {
            r["exception_id"]: r
            for r in notes.where(F.col("business_date") == F.lit(day)).collect()
        }
        assert set(rows) == open_ids, day
        for exception_id, row in rows.items():
            assert row["enrichment_status"] == "ok" and row["analyst_note"]
            assert row["probable_reason"] in EXCEPTION_REASON.names
            # Offline: a local model wrote it, or the cache holds what it wrote a night before.
            assert (row["source"], row["model"]) in {("model", EMBEDDED_MODEL_ID),
                                                     ("cache", EMBEDDED_MODEL_ID)}  # fmt: skip
            if exception_id in previous:
                # Carried from the night before: the same note (one run enriches all its nights
                # together, so the item is computed once: here, or from the cache on a later run).
                note = (row["probable_reason"], row["analyst_note"])
                assert note == previous[exception_id], (day, exception_id)
        previous = {i: (r["probable_reason"], r["analyst_note"]) for i, r in rows.items()}
    # Enriched once: no input reached the note's provider twice, whatever nights it was open on.
    calls = lakehouse.read(spark, TableRef("ops", "llm_calls")).where(
        F.col("task") == "recon_exception_note"
    )
    assert calls.count() == calls.select("input_hash").distinct().count() > 0


def test_each_entity_gets_a_paragraph_on_each_night(spark, closed):
    lakehouse = LakehouseResource()
    narratives = lakehouse.read(spark, TableRef("gold", "close_narrative")).collect()
    summary = lakehouse.read(spark, TableRef("gold", "close_summary")).collect()
    assert {(r["business_date"], r["legal_entity"]) for r in narratives} == {
        (r["business_date"], r["legal_entity"]) for r in summary
    }
    for row in narratives:
        assert row["status"] == "ok" and row["narrative"].startswith(row["legal_entity"] + ":")
        assert (row["source"], row["model"]) == ("rule", "template/close-narrative-v1")


def test_recomputing_a_date_alone_leaves_the_close_unchanged(spark, closed):
    lakehouse = LakehouseResource()

    def gold(name: str) -> list:
        df = lakehouse.read(spark, TableRef("gold", name))
        return sorted(tuple(r) for r in df.collect())

    before = {name: gold(name) for name in ("recon_matches", "recon_exceptions", "close_summary")}
    versions = {name: lakehouse.version(spark, TableRef("gold", name)) for name in before}
    for day in DAYS[-1:]:
        result = materialize(
            all_assets,
            selection=RECON_STEPS,
            partition_key=day.isoformat(),
            resources=build_resources(),
            # Inputs are unchanged: without the tag the date would be skipped, not recomputed.
            tags={RECOMPUTE_TAG: "true"},
        )
        assert result.success
    assert {name: gold(name) for name in before} == before
    # It was recomputed and published again (same rows, new commits).
    assert all(lakehouse.version(spark, TableRef("gold", n)) > v for n, v in versions.items())


def test_an_unchanged_rerun_of_the_range_skips_every_step_and_writes_nothing(
    spark, closed, monkeypatch
):
    lakehouse = LakehouseResource()
    tables = sorted(p.name for p in (closed / "gold").iterdir())
    before = {name: lakehouse.version(spark, TableRef("gold", name)) for name in tables}
    # Nothing to compute: no step may build the run's Spark session (the JVM is never started
    # by a run outside the tests; here the tests' own session would be handed out).
    built = []
    monkeypatch.setattr(SparkResource, "_build", lambda self: built.append(1) or spark)
    result = materialize(
        all_assets,
        resources=build_resources(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: FIRST.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: LAST.isoformat(),
        },
    )
    assert result.success
    computed = {
        event.step_key: event.materialization.metadata["dates_computed"].value
        for event in result.get_asset_materialization_events()
    }
    assert len(computed) >= 20 and set(computed.values()) == {0}, computed
    assert {name: lakehouse.version(spark, TableRef("gold", name)) for name in tables} == before
    assert built == []
    queue = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey("gold_review_queue")
    ]
    assert queue and all("reused" in m["metrics_reused"].value for m in queue)


def test_hr_cases_are_typed_prioritised_and_summarized_offline(spark, closed, closed_lakehouse):
    cases, roster, truth = hr._landed(closed, generate=False)
    assert cases, "the generator lands cases on weekdays"
    result = closed_lakehouse.result

    gold = {
        r["case_id"]: r
        for r in LakehouseResource().read_partition(spark, hr.GOLD, hr.DAY).collect()
    }
    assert set(gold) == {c["case_id"] for c in cases}
    for case_id, row in gold.items():
        assert row["enrichment_status"] == "ok" and row["urgency_enrichment_status"] == "ok"
        assert row["case_type"] in HR_CASE_TYPE.names
        assert row["urgency"] in HR_CASE_URGENCY.names
        # Honest provenance: the embedded model, never presented as an LLM.
        assert (row["source"], row["model"]) == ("model", EMBEDDED_MODEL_ID)
        assert (row["urgency_source"], row["urgency_model"]) == ("model", EMBEDDED_MODEL_ID)
        assert 0 <= row["case_type_confidence"] <= 1
        assert row["case_summary"]
        assert row["urgency_rationale"].startswith(("shares ", "no word in common"))
        assert json.loads(row["redactions"])["PERSON"] >= 1
        assert row["case_type"] == truth[case_id]["case_type"]
    summaries = " ".join(r["case_summary"] for r in gold.values())
    for secret in hr._secrets(cases, roster):
        assert secret not in summaries
    staged = result.asset_materializations_for_node("staging_hr_cases")[0].metadata
    assert staged["enrichment_provider"].value.startswith("embedded offline model")
    assert staged["validation_passed"].value is True


def test_unsure_values_queue_for_review_through_the_gate_with_their_redacted_text(
    spark, closed, closed_lakehouse
):
    lakehouse = LakehouseResource()
    queue = lakehouse.read(spark, TableRef("gold", "review_queue"))
    expenses = lakehouse.read(spark, TableRef("gold", "expense_lines"))
    # No decision yet: every published line is the model's, with no reviewer.
    assert expenses.where("source = 'human' OR reviewed_by IS NOT NULL").count() == 0
    threshold = review_thresholds()["expense_line_enrichment"]
    unsure = expenses.where(F.col("confidence") < threshold).select(
        key_json(["report_id", "line_id"]).alias("key"), "business_date"
    )
    queued = queue.where("table_name = 'expense_lines'").select("key", "business_date")
    assert unsure.count() > 0
    # Every unsure line of every date is queued (for that reason or a stronger one).
    assert unsure.join(queued, ["key", "business_date"], "left_anti").count() == 0
    rows = queue.collect()
    assert {r["status"] for r in rows} == {"open"}
    assert all(r["record_text"] for r in rows)
    # The cases' text is the redacted text the model read: nobody's personal data.
    cases, roster, _ = hr._landed(closed, generate=False)
    case_text = " ".join(r["record_text"] for r in rows if r["table_name"] == "hr_cases")
    for secret in hr._secrets(cases, roster):
        assert secret not in case_text
    # Published through the gate: a passing audit, then a publish, for each date.
    ledger = lakehouse.read(spark, wap.WAP_LEDGER).where("table = 'review_queue'").collect()
    for event in ("audited", "published"):
        assert {r["business_date"] for r in ledger if r["event"] == event} == set(DAYS)
    assert all(r["passed"] for r in ledger)
    # The queue's health as metadata, and its two warnings evaluated.
    result = closed_lakehouse.result
    metadata = result.asset_materializations_for_node("gold_review_queue")[0].metadata
    assert metadata["open_items"].value == len(rows)
    shares = metadata["share_needing_review"].value
    assert 0 < shares["expense_lines.spend_category"]["share"] <= 1
    # Every reviewed table is measured; the notes, invoices and contracts carry their review
    # columns, empty.
    assert {
        "recon_exception_notes.probable_reason",
        "invoice_documents.total",
        "contract_terms.payment_terms",
    } <= set(shares)
    notes = lakehouse.read(spark, TableRef("gold", "recon_exception_notes"))
    assert notes.where("reviewed_by IS NOT NULL OR source = 'human'").count() == 0
    for documents in ("invoice_documents", "contract_terms"):
        gold = lakehouse.read(spark, TableRef("gold", documents))
        assert gold.where(F.size("reviewed_fields") > 0).count() == 0, documents
    checks = {
        e.check_name
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path == ["gold_review_queue"]
    }
    assert checks == {OPEN_ITEMS_CHECK, OVERRIDE_RATE_CHECK}


def test_invoice_documents_reach_gold_with_their_fields_and_the_seeded_discrepancies_show(
    spark, closed
):
    lakehouse = LakehouseResource()
    ap = {
        r["invoice_id"]: r
        for r in lakehouse.read(spark, TableRef("silver", "ap_invoices")).collect()
    }
    pages = lakehouse.read(spark, TableRef("silver", "invoice_document_pages"))
    found = set()
    for day in DAYS:
        key = _key(closed, day)["invoice_documents"]
        bronze = lakehouse.read_partition(spark, TableRef("bronze", "invoice_documents"), day)
        assert {r["file_name"] for r in bronze.collect()} == set(key), day
        gold = {
            r["file_name"]: r
            for r in lakehouse.read_partition(
                spark, TableRef("gold", "invoice_documents"), day
            ).collect()
        }
        assert set(gold) == set(key), day
        methods = {
            r["file_name"]: r["method"]
            for r in pages.where(F.col("business_date") == day).collect()
        }
        for name, truth in key.items():
            row = gold[name]
            # Offline, the embedded rules read every document, and say so on every field.
            assert (row["source"], row["model"]) == ("rule", "embedded/invoice-rules-v1")
            assert {f["source"] for f in row["fields"]} == {"rule"}
            assert row["invoice_number"] == truth["invoice_number"], name
            assert str(row["total"]) == truth["total"], name
            assert row["net_plus_tax_is_total"] == "passed", name
            if truth["duplicate_of"]:
                assert (row["duplicate_of_file"], name not in methods) == (
                    truth["duplicate_of"],
                    True,
                )
                found.add("DUPLICATE_DOCUMENT")
                continue
            assert methods[name] == ("ocr" if truth["scanned"] else "text_layer"), name
            assert row["invoice_date"].isoformat() == truth["invoice_date"], name
            posted = ap.get(row["invoice_number"])
            if posted is None:
                shows = "DOC_NOT_IN_AP"
            elif posted["amount"] != row["total"]:
                shows = "DOC_AMOUNT_MISMATCH"
            elif posted["invoice_date"] != row["invoice_date"]:
                shows = "DOC_DATE_MISMATCH"
            else:
                shows = None
            assert truth["discrepancy"] == shows, name
            found.add(shows)
    assert found - {None} == {
        "DOC_AMOUNT_MISMATCH",
        "DOC_DATE_MISMATCH",
        "DOC_NOT_IN_AP",
        "DUPLICATE_DOCUMENT",
    }


def test_contracts_reach_gold_with_their_terms_read_offline_the_scan_by_ocr(spark, closed):
    lakehouse = LakehouseResource()
    key = _key(closed, FIRST)["contract_documents"]
    assert key and not any(_key(closed, day)["contract_documents"] for day in DAYS[1:])
    gold = {
        r["file_name"]: r
        for r in lakehouse.read(spark, TableRef("gold", "contract_terms")).collect()
    }
    assert set(gold) == set(key) and {r["business_date"] for r in gold.values()} == {FIRST}
    pages = lakehouse.read(spark, TableRef("silver", "contract_document_pages")).collect()
    methods = {r["file_name"]: r["method"] for r in pages}
    for name, truth in key.items():
        row = gold[name]
        assert (row["source"], row["model"]) == ("rule", "embedded/contract-rules-v1")
        assert methods[name] == ("ocr" if truth["scanned"] else "text_layer"), name
        assert (row["payment_days"], row["effective_date"].isoformat()) == (
            truth["payment_days"],
            truth["effective_date"],
        ), name
        assert truth["vendor_name"] in [p["name"] for p in row["parties"]], name
