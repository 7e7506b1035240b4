"""The one daily partition definition every dated asset shares, and how runs span it."""

from datetime import date

from dagster import AssetExecutionContext, BackfillPolicy, DailyPartitionsDefinition

# Business dates from the start of the sample history; the newest partition is yesterday.
daily_partitions = DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")

# A backfill runs up to a week of dates per run, in one Spark session, date by date: the same
# writes as running them one at a time, without a Spark start per date.
BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=7)


def business_dates(context: AssetExecutionContext) -> list[date]:
    """The business dates this run materializes, oldest first."""
    return sorted(date.fromisoformat(key) for key in context.partition_keys)
