"""The publish step every single gold table shares: the audited staging partition, or nothing.

``wap.publish_dates`` refuses a date whose latest audit failed (or never ran); the asset turns that
into a Dagster failure that is not retried, since a retry cannot change the verdict.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, business_dates, daily_partitions
from infra import wap
from infra.lakehouse import LakehouseResource
from infra.spark import SparkResource


def published_metadata(
    done: wap.Published, table: wap.GoldTable, lakehouse: LakehouseResource
) -> dict:
    """What a publish step reports: rows, the staged version published per date, where."""
    return {
        "rows": done.rows,
        "published_from_staged_versions": MetadataValue.json(done.staged_versions),
        "delta_version": done.gold_version,
        "table": table.gold.qualified,
        "location": lakehouse.path(table.gold),
    }


def publish_asset(
    table: wap.GoldTable, staging: AssetsDefinition | AssetKey, description: str
) -> AssetsDefinition:
    """``gold_<table>``: publishes each date of the run whose staged partition passed its audit."""

    @asset(
        name=f"gold_{table.name}",
        partitions_def=daily_partitions,
        backfill_policy=BACKFILL_POLICY,
        retry_policy=TRANSIENT_RETRY,
        deps=[staging],
        group_name="gold",
        kinds={"spark", "delta"},
        description=description,
    )
    def _publish(
        context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
    ) -> MaterializeResult:
        try:
            done = wap.publish_dates(
                lakehouse, spark.session, table, business_dates(context), context.run_id
            )
        except wap.PublishRefusedError as refused:
            raise Failure(description=str(refused), allow_retries=False) from refused
        return MaterializeResult(metadata=published_metadata(done, table, lakehouse))

    return _publish
