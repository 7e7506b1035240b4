"""The Dagster definitions load, and their wiring matches the design."""

from dagster import AssetKey, DailyPartitionsDefinition

from assets.partitions import daily_partitions
from pipelines.definitions import defs


def test_definitions_load_with_one_shared_daily_partitioning():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "bronze_expense_lines",
        "silver_expense_lines",
        "quarantine_expense_lines",
        "staging_expense_lines",
        "gold_expense_lines",
    }
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        assert partitions == daily_partitions
        assert isinstance(partitions, DailyPartitionsDefinition)


def test_gold_depends_on_the_audited_staging_asset():
    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey("gold_expense_lines")).parent_keys == {
        AssetKey("staging_expense_lines")
    }


def test_staging_suite_checks_are_blocking_for_error_severity():
    checks = {
        spec.name: spec.blocking
        for spec in defs.resolve_asset_graph().get(AssetKey("staging_expense_lines")).check_keys
        and defs.get_assets_def(AssetKey("staging_expense_lines")).check_specs
    }
    assert checks["line_key_unique"] is True
    assert checks["enriched_share"] is False
    assert len(checks) >= 5


def test_nightly_schedule_targets_the_previous_business_date():
    schedule = defs.get_schedule_def("nightly_close")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.job_name == "daily_close"
    job = defs.resolve_job_def("daily_close")
    assert job.partitions_def == daily_partitions
