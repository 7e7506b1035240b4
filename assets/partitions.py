"""The one daily partition definition every dated asset shares."""

from datetime import date

from dagster import AssetExecutionContext, DailyPartitionsDefinition

# Business dates from the start of the sample history; the newest partition is yesterday.
daily_partitions = DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")


def business_date(context: AssetExecutionContext) -> date:
    """The business date a (single-partition) run materializes."""
    return date.fromisoformat(context.partition_key)
