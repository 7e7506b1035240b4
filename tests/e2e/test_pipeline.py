"""The expense-line flow through Dagster's ``materialize()`` on a temporary lakehouse.

The whole close (every source, the reconciliations) has its own end-to-end test in
``test_close.py``; here only expense lines and the FX rates they convert with are materialized.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, JobExecutionResult, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from pyspark.sql import functions as F

from infra.enrichment import EnrichmentResource
from infra.lakehouse import LakehouseResource, TableRef
from infra.versions import RECOMPUTE_TAG
from pipelines.definitions import all_assets, build_resources
from sample import close as sample_close
from sample import expenses as sample_data
from tests.runs import run_close
from transforms.contracts import VALID_CURRENCIES

pytestmark = pytest.mark.slow

DAY = date(2026, 3, 31)
NEXT = DAY + timedelta(days=1)
DAYS = [DAY, NEXT]
GOLD = TableRef("gold", "expense_lines")
# What a re-run may change: this run's provenance (cache hits cost nothing now), not the values.
RUN_PROVENANCE = ["source", "tokens_in", "tokens_out", "cost_usd", "attempts", "latency_ms"]


EXPENSE_FLOW = [
    AssetKey(k)
    for k in (
        "bronze_fx_rates",
        "silver_fx_rates",
        "bronze_expense_lines",
        "silver_expense_lines",
        "staging_expense_lines",
        "gold_expense_lines",
    )
]


def land_rates(root: Path, day: date) -> None:
    """The day's FX rates file, as the close's generator writes it."""
    folder = root / "landing" / "fx_rates" / f"business_date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "rate_date": day.isoformat(),
            "currency": cur,
            "rate_to_usd": sample_close.fx_rate(7, day, cur),
            "source": "test",
        }
        for cur in sorted(VALID_CURRENCIES)
    ]
    (folder / "fx_rates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _run(resources: dict | None = None, selection=None, recompute: bool = False):
    return materialize(
        all_assets,
        partition_key=DAY.isoformat(),
        resources=resources or build_resources(),
        selection=selection or EXPENSE_FLOW,
        raise_on_error=False,
        # Unchanged inputs are skipped; the tag makes the steps compute again.
        tags={RECOMPUTE_TAG: "true"} if recompute else None,
    )


def _check_results(result) -> dict[str, bool]:
    return {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def _metadata(result, asset: str) -> dict:
    """Metadata of the run's materialization of ``asset``."""
    # A ranged run reports once per date of its range, with the same (run-wide) metadata.
    mat = next(
        m for m in result.asset_materializations_for_node(asset) if m.asset_key == AssetKey(asset)
    )
    return {k: v.value for k, v in mat.metadata.items()}


def land(root: Path) -> sample_data.DayAnswerKey:
    """Two dates of expense lines and rates; ``DAY``'s answer key."""
    land_rates(root, NEXT)
    sample_data.generate_day(root, NEXT, rows=80, seed=2)
    land_rates(root, DAY)
    return sample_data.generate_day(root, DAY, rows=160, seed=11)


@dataclass(frozen=True)
class Published:
    """The module's lakehouse: both dates landed and published in one ranged run."""

    root: Path
    key: sample_data.DayAnswerKey
    result: JobExecutionResult


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, spark) -> Iterator[Published]:
    """One ranged run of the expense flow over ``DAYS``, shared by the tests of this module.

    The tests that write to it (a recompute, a corrupted audit) leave gold as it was: that is
    what they assert.
    """
    root = tmp_path_factory.mktemp("expenses") / "lakehouse"
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_ROOT", str(root))
    mp.delenv("OPENAI_API_KEY", raising=False)
    try:
        key = land(root)
        # Through the definitions' job on its threaded executor (the rates' and the expense
        # lines' bronze and silver steps run side by side), as the UI and the schedule run it.
        result = run_close(
            {
                ASSET_PARTITION_RANGE_START_TAG: DAYS[0].isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: DAYS[-1].isoformat(),
            },
            asset_selection=EXPENSE_FLOW,
        )
    finally:
        mp.undo()
    yield Published(root, key, result)


@pytest.fixture
def on_published(published: Published, monkeypatch: pytest.MonkeyPatch) -> Published:
    """The module's lakehouse as this test's ``LAKEHOUSE_ROOT``."""
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(published.root))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return published


def test_end_to_end_publishes_exactly_the_valid_rows_and_is_idempotent(spark, on_published):
    result, landed = on_published.result, on_published.key
    assert result.success
    assert all(_check_results(result).values()), _check_results(result)

    lakehouse = LakehouseResource()
    gold = lakehouse.read_partition(spark, GOLD, DAY)
    keys = sorted(f"{r[0]}|{r[1]}" for r in gold.select("report_id", "line_id").collect())
    assert keys == sorted(landed.valid_keys)

    # Every deliberately bad row is quarantined with the reason the answer key expects.
    quarantine = lakehouse.read_partition(spark, TableRef("silver", "quarantine"), DAY)
    got = sorted((r["record_key"], r["reason_code"]) for r in quarantine.collect())
    expected = sorted((k.split("#")[0], v) for k, v in landed.quarantined.items())
    assert got == expected

    # bronze = silver + quarantine
    bronze = lakehouse.read_partition(spark, TableRef("bronze", "expense_lines"), DAY).count()
    silver = lakehouse.read_partition(spark, TableRef("silver", "expense_lines"), DAY).count()
    assert bronze == landed.rows_written == silver + len(expected)

    # Enrichment is real: it recovers the generator's true categories, says who produced it.
    labelled = {
        f"{r[0]}|{r[1]}": r[2]
        for r in gold.select("report_id", "line_id", "spend_category").collect()
    }
    accuracy = sum(labelled[k] == landed.categories[k] for k in labelled) / len(labelled)
    assert accuracy > 0.9
    provenance = gold.select("enrichment_status", "source", "model").distinct().collect()
    assert [tuple(r) for r in provenance] == [
        ("ok", "model", "embedded/tfidf-label-similarity-v1+extractive-summary-v1")
    ]
    staging = _metadata(result, "staging_expense_lines")
    assert staging["computed_now"] > 0
    assert "no OPENAI_API_KEY" in staging["enrichment_provider"]
    # The audit: every staged row of both dates validated, in one GX pass (nothing failed), Data
    # Docs written.
    assert staging["rows_validated"] == lakehouse.read(spark, GOLD).count()
    assert staging["rules_failed"] == "none"
    # One GX pass over both dates (the date-dependent rules read each row's own date, the
    # aggregate ones are judged per date from one aggregation); nothing failed, so no second pass
    # looked for offending rows.
    assert len(DAYS) > 1
    assert staging["gx_validation_passes"] == 1
    assert "data_docs_failures" not in staging
    assert Path(staging["data_docs"].removeprefix("file://")).is_file()

    # Recomputed: same gold, no duplicates, nothing enriched again (the cache answers).
    before = gold.drop(*RUN_PROVENANCE).orderBy("report_id", "line_id").collect()
    again = _run(recompute=True)
    assert again.success
    after_df = lakehouse.read_partition(spark, GOLD, DAY)
    assert after_df.drop(*RUN_PROVENANCE).orderBy("report_id", "line_id").collect() == before
    rerun = _metadata(again, "staging_expense_lines")
    assert rerun["computed_now"] == 0
    assert rerun["cache_hits"] == rerun["distinct_inputs"] > 0
    assert {r[0] for r in after_df.select("source").distinct().collect()} == {"cache"}


def test_wrong_typed_amount_column_is_quarantined_and_counts_reconcile(spark, lakehouse_root):
    folder = lakehouse_root / "landing" / "expense_lines" / f"business_date={DAY.isoformat()}"
    folder.mkdir(parents=True)
    header = ",".join(sample_data.EXPENSE_COLUMNS)
    lines = [
        f"ER-1,{i},E0000{i},2026-03-30,Uber,twelve dollars,USD,meals,Lunch with the team."
        for i in range(1, 5)
    ]
    (folder / "export.csv").write_text("\n".join([header, *lines]) + "\n")
    land_rates(lakehouse_root, DAY)
    result = _run(selection=EXPENSE_FLOW[:4])
    assert result.success
    silver = _metadata(result, "silver_expense_lines")
    assert (silver["bronze_rows"], silver["rows"], silver["quarantined_rows"]) == (4, 0, 4)
    lakehouse = LakehouseResource()
    reasons = {
        r["reason_code"]
        for r in lakehouse.read_partition(spark, TableRef("silver", "quarantine"), DAY).collect()
    }
    assert reasons == {"INVALID_AMOUNT"}


class CorruptingEnrichment(EnrichmentResource):
    """Enrichment that returns an impossible confidence: the audit must stop it."""

    def enrich(self, *args, **kwargs):
        run = super().enrich(*args, **kwargs)
        run.rows = run.rows.withColumn("confidence", F.lit(1.5))
        return run


def test_failing_audit_blocks_publish_and_leaves_gold_unchanged(spark, on_published):
    lakehouse = LakehouseResource()
    version_before = lakehouse.version(spark, GOLD)
    content_before = lakehouse.read(spark, GOLD).orderBy("report_id", "line_id").collect()

    resources = {**build_resources(), "enrichment": CorruptingEnrichment()}
    result = _run(resources)
    assert not result.success
    checks = _check_results(result)
    assert checks["confidence_is_probability"] is False
    assert checks["line_key_unique"] is True
    # gold's step never ran; its table did not move.
    assert not result.asset_materializations_for_node("gold_expense_lines")
    # The failed rule's offending rows were looked up in a second pass, with Data Docs of their own.
    staging = _metadata(result, "staging_expense_lines")
    assert staging["gx_validation_passes"] == 2
    assert Path(staging["data_docs_failures"].removeprefix("file://")).is_file()
    assert lakehouse.version(spark, GOLD) == version_before
    assert lakehouse.read(spark, GOLD).orderBy("report_id", "line_id").collect() == content_before
    # The rejected candidate stays in staging for inspection, and the ledger says why.
    staged = lakehouse.read_partition(spark, TableRef("staging", "expense_lines"), DAY)
    assert staged.where("confidence = 1.5").count() == staged.count() > 0
    ledger = lakehouse.read(spark, TableRef("ops", "wap_ledger")).orderBy(F.col("at").desc())
    last = ledger.first()
    assert (last["event"], last["passed"]) == ("audited", False)
    assert "confidence_is_probability" in last["rules_failed"]


def test_answer_key_is_written_next_to_the_landing_zone(on_published):
    key_file = on_published.root / "answer_keys" / "expense_lines" / f"{DAY.isoformat()}.json"
    assert json.loads(key_file.read_text())["rows_written"] == on_published.key.rows_written == 160


def test_a_ranged_backfill_run_equals_running_the_dates_one_by_one(
    spark, published, tmp_path, monkeypatch
):
    def gold_content() -> list[tuple]:
        gold = LakehouseResource().read(spark, GOLD).drop(*RUN_PROVENANCE, "_source_file")
        return sorted(tuple(r) for r in gold.collect())

    # The module's ranged run (the tests that write to it leave gold's values as they were).
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(published.root))
    assert published.result.success
    in_one_run = gold_content()
    dates = {r["business_date"] for r in LakehouseResource().read(spark, GOLD).collect()}
    assert dates == set(DAYS)

    one_by_one = tmp_path / "one_by_one"
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(one_by_one))
    land(one_by_one)
    for day in DAYS:
        assert materialize(
            all_assets,
            selection=EXPENSE_FLOW,
            partition_key=day.isoformat(),
            resources=build_resources(),
        ).success
    assert gold_content() == in_one_run
