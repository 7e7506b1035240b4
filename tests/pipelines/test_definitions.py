"""The Dagster definitions load, and their wiring matches the design."""

from pathlib import Path

import pytest
from dagster import AssetKey, DailyPartitionsDefinition

from assets.partitions import daily_partitions
from pipelines.definitions import defs


def test_definitions_load_with_one_shared_daily_partitioning():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    sources = [
        "expense_lines",
        "gl_journal_lines",
        "ap_invoices",
        "ap_payments",
        "bank_statement_lines",
        "fx_rates",
        "hris_roster",
        "payroll_register",
        "hr_cases",
    ]
    assert keys == {
        *(f"bronze_{s}" for s in sources),
        *(f"silver_{s}" for s in sources),
        "silver_hris_history",
        "staging_expense_lines",
        "gold_expense_lines",
        "staging_hr_cases",
        "gold_hr_cases",
        "staging_close_narrative",
        "gold_close_narrative",
        "staging_recon_exception_notes",
        "gold_recon_exception_notes",
        "staging_review_queue",
        "gold_review_queue",
        "bronze_invoice_documents",
        "silver_invoice_document_pages",
        "staging_invoice_documents",
        "gold_invoice_documents",
        "bronze_contract_documents",
        "silver_contract_document_pages",
        "staging_contract_terms",
        "gold_contract_terms",
        *(
            f"{layer}_{t}"
            for layer in ("staging", "gold")
            for t in ("recon_matches", "recon_exceptions", "close_summary")
        ),
    }
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        assert partitions == daily_partitions
        assert isinstance(partitions, DailyPartitionsDefinition)


def test_gold_depends_on_the_audited_staging_asset():
    graph = defs.resolve_asset_graph()
    for table in ("expense_lines", "invoice_documents", "contract_terms"):
        assert graph.get(AssetKey(f"gold_{table}")).parent_keys == {AssetKey(f"staging_{table}")}


def test_the_review_queue_reads_the_reviewed_gold_tables_and_warns_on_its_health():
    graph = defs.resolve_asset_graph()
    assert {
        k.to_user_string() for k in graph.get(AssetKey("staging_review_queue")).parent_keys
    } == {
        "gold_expense_lines",
        "gold_hr_cases",
        "gold_recon_exception_notes",
        "gold_invoice_documents",
        "gold_contract_terms",
        # where the reviewed tables' record text is built from
        "silver_hr_cases",
        "gold_recon_exceptions",
        "silver_invoice_document_pages",
        "silver_contract_document_pages",
        "silver_hris_roster",
    }
    assert graph.get(AssetKey("gold_review_queue")).parent_keys == {
        AssetKey("staging_review_queue")
    }
    checks = defs.get_assets_def(AssetKey("gold_review_queue")).check_specs
    assert {c.name for c in checks} == {"open_items_within_limit", "override_rate_within_limit"}
    assert not any(c.blocking for c in checks)
    staging = {c.name for c in defs.get_assets_def(AssetKey("staging_review_queue")).check_specs}
    assert {"key_not_null", "reason_known", "confidence_is_probability"} <= staging


def test_silver_error_rules_block_and_staging_rules_are_gated_per_date_at_publish():
    """Silver's error rules block what follows; a staged gold table's are enforced per date by
    the publish step (one bad date must not hold back the others of a ranged run)."""
    staging = {
        spec.name: spec
        for spec in defs.get_assets_def(AssetKey("staging_expense_lines")).check_specs
    }
    assert len(staging) >= 5
    assert not any(spec.blocking for spec in staging.values())
    assert staging["line_key_unique"].description.startswith("[error]")
    assert "refused at publish" in staging["line_key_unique"].description
    assert staging["enriched_share"].description.startswith("[warn]")
    silver = {
        spec.name: spec.blocking
        for spec in defs.get_assets_def(AssetKey("silver_expense_lines")).check_specs
    }
    assert silver["bronze_rows_conserved"] is True
    assert silver["line_key_unique"] is True


def test_reconciliation_reads_every_silver_source_and_the_published_documents():
    graph = defs.resolve_asset_graph()
    parents = {
        k.to_user_string() for k in graph.get(AssetKey("staging_recon_exceptions")).parent_keys
    }
    assert parents == {
        "silver_fx_rates",
        "silver_bank_statement_lines",
        "silver_gl_journal_lines",
        "silver_ap_invoices",
        "silver_ap_payments",
        "silver_payroll_register",
        "silver_hris_roster",
        "silver_expense_lines",
        # Documents are reconciled once published: only what passed their audit.
        "gold_invoice_documents",
        "gold_contract_terms",
    }
    # Nothing the documents' extraction reads comes from the close.
    for documents in ("gold_invoice_documents", "gold_contract_terms"):
        ancestors = graph.get_ancestor_asset_keys(AssetKey(documents))
        close = {AssetKey("staging_recon_exceptions"), AssetKey("gold_recon_exceptions")}
        assert not close & ancestors
    for table in ("recon_matches", "recon_exceptions", "close_summary"):
        assert AssetKey(f"staging_{table}") in graph.get(AssetKey(f"gold_{table}")).parent_keys
    # Every amount converts at the day's rate, so silver waits for silver FX.
    assert AssetKey("silver_fx_rates") in graph.get(AssetKey("silver_gl_journal_lines")).parent_keys
    assert AssetKey("silver_fx_rates") in graph.get(AssetKey("silver_expense_lines")).parent_keys


def test_nightly_schedule_targets_the_previous_business_date():
    schedule = defs.get_schedule_def("nightly_close")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.job_name == "daily_close"
    job = defs.resolve_job_def("daily_close")
    assert job.partitions_def == daily_partitions


def test_landing_sensor_requests_complete_dates_once_and_reports_late_sources(
    tmp_path, monkeypatch
):
    from datetime import UTC, datetime, timedelta

    from dagster import SkipReason, build_sensor_context

    import pipelines.sensors
    from infra.lakehouse import LakehouseResource
    from pipelines.sensors import landing_zone_sensor
    from sample.close import generate_close

    noon = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)  # past 06:00: yesterday's files are due
    monkeypatch.setattr(pipelines.sensors, "utc_now", lambda: noon)
    lakehouse = LakehouseResource(root=str(tmp_path))
    context = build_sensor_context(resources={"lakehouse": lakehouse})
    empty = landing_zone_sensor(context)
    assert isinstance(empty, SkipReason)
    # Yesterday's files are past due at 06:00: every daily source is named.
    assert "late: gl_journal_lines, ap_invoices" in empty.skip_message
    assert "expense_lines" in empty.skip_message

    two_days_ago = (noon - timedelta(days=2)).date()
    generate_close(
        tmp_path,
        two_days_ago,
        two_days_ago,
        gl_lines_per_day=20,
        employees=10,
        expense_rows=20,
        with_documents=False,
    )
    result = landing_zone_sensor(build_sensor_context(resources={"lakehouse": lakehouse}))
    [request] = result.run_requests
    assert request.partition_key == two_days_ago.isoformat()
    again = landing_zone_sensor(build_sensor_context(resources={"lakehouse": lakehouse}))
    assert again.run_requests[0].run_key == request.run_key  # same files, same key: no rerun

    # A vendor's invoice lands later for that date: while it is still being written under a
    # temporary name the date waits; once it has its name, the date runs again with it.
    documents = Path(
        lakehouse.landing_path("invoice_documents", two_days_ago).removeprefix("file://")
    )
    documents.mkdir(parents=True)
    (documents / "INV-7.PDF.part").write_bytes(b"%PDF-1.7 half")
    waiting = landing_zone_sensor(build_sensor_context(resources={"lakehouse": lakehouse}))
    assert isinstance(waiting, SkipReason)
    assert "invoice_documents/INV-7.PDF.part (temporary name)" in waiting.skip_message
    (documents / "INV-7.PDF.part").rename(documents / "INV-7.PDF")
    with_document = landing_zone_sensor(build_sensor_context(resources={"lakehouse": lakehouse}))
    [rerun] = with_document.run_requests
    assert rerun.partition_key == request.partition_key
    assert rerun.run_key != request.run_key


def test_keys_of_one_multi_asset_share_their_parents():
    # Dagster refuses a backfill from the UI ("Targeted subset must match between every key in a
    # non-subsettable multi-asset") when the keys of one multi-asset have different parents.
    graph = defs.resolve_asset_graph()
    for assets_def in defs.assets:
        keys = list(getattr(assets_def, "keys", []))
        if len(keys) < 2:
            continue
        parents = {key: graph.get(key).parent_keys for key in keys}
        assert len({frozenset(p) for p in parents.values()}) == 1, parents


def test_run_selection_takes_whole_multi_asset_steps():
    from cli import whole_steps

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in whole_steps("staging_recon_matches").resolve(graph)}
    # The reconciliation stages its three tables in one step: selecting one selects the three.
    assert keys == {"staging_recon_matches", "staging_recon_exceptions", "staging_close_summary"}
    assert whole_steps(None) is None
    with pytest.raises(SystemExit, match="no_such_asset"):
        whole_steps("no_such_asset")


def test_runs_share_one_process_and_run_ready_steps_in_threads():
    from infra.executor import threaded_executor
    from pipelines.definitions import close_job

    job = close_job()
    assert job.executor_def is threaded_executor
    # The UI's asset jobs (backfills) get the same executor.
    assert defs.resolve_implicit_global_asset_job_def().executor_def is threaded_executor
