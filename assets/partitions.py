"""The one daily partition definition every dated asset shares; how runs span and retry it."""

import warnings
from datetime import date

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Backoff,
    BetaWarning,
    DailyPartitionsDefinition,
    Jitter,
    RetryPolicy,
)

# Business dates from the start of the sample history; the newest partition is yesterday.
daily_partitions = DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")

# A backfill runs up to a month of dates per run, in one Spark session: each table is written in
# one commit per run and audited per date, with the same content as running the dates one by one.
BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=31)
# ``@asset(backfill_policy=...)`` is beta in the pinned Dagster (requirements.lock), and it warns
# once per asset so defined: some forty identical warnings on the stderr of every process that
# imports the definitions (``make run`` printed 37). The choice is made and documented
# (docs/ARCHITECTURE.md, "Ranged runs"); this one warning is silenced, and no other.
warnings.filterwarnings(
    "ignore", message=r"Parameter `backfill_policy` of function `asset`", category=BetaWarning
)


# A step that hits a transient failure (a lost executor, a storage hiccup, a provider outage) is
# retried twice with backoff; failures that cannot heal (a refused publish) opt out.
TRANSIENT_RETRY = RetryPolicy(
    max_retries=2, delay=20, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


def business_dates(context: AssetExecutionContext) -> list[date]:
    """The business dates this run materializes, oldest first."""
    return sorted(date.fromisoformat(key) for key in context.partition_keys)
