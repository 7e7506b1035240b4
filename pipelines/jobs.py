"""Jobs and schedules."""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from assets.partitions import daily_partitions

# One process, one Spark session per run: the embedded metastore allows one JVM at a time, and
# starting Spark per step would dominate a nightly run.
daily_close_job = define_asset_job(
    name="daily_close",
    selection=AssetSelection.all(),
    partitions_def=daily_partitions,
    description="The nightly close for one business date: every source bronze -> silver, "
    "enrichment, the reconciliations, each gold table through write-audit-publish.",
    tags={"dagster/max_retries": 1},
)

# At 02:00 UTC, materialize the previous business date.
nightly_close_schedule = build_schedule_from_partitioned_job(
    daily_close_job,
    hour_of_day=2,
    minute_of_hour=0,
    name="nightly_close",
    default_status=DefaultScheduleStatus.RUNNING,
)
