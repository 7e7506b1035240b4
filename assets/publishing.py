"""The publish step every gold table shares: each date's audited staging partition, or nothing.

``wap.publish_dates`` publishes the run's dates whose latest audit passed and refuses the others
(failed, or never audited). With nothing refused the step materializes every date; otherwise it
records a materialization for each published date alone and then fails, naming the refused dates,
so each shows as failed in its own partition and "re-execute failed" retries only those. The
failure is not retried automatically: a retry cannot change an audit's verdict.
"""

from collections.abc import Iterator
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
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


def publish_events(
    done: wap.Published, table: wap.GoldTable, lakehouse: LakehouseResource, asset_key: str
) -> Iterator[MaterializeResult | AssetMaterialization]:
    """What the step reports: one result for the run, or one materialization per published date."""
    metadata = published_metadata(done, table, lakehouse)
    if not done.refused:
        yield MaterializeResult(asset_key=asset_key, metadata=metadata)
        return
    for day in done.published_dates:
        yield AssetMaterialization(
            asset_key=asset_key,
            partition=day.isoformat(),
            metadata={**metadata, "published_from_staged_version": done.staged_versions[str(day)]},
        )


def refused_failure(refused: dict[date, str]) -> Failure:
    """The step's failure for dates refused at publish (not retried: the verdict stands)."""
    return Failure(
        description=f"{len(refused)} date(s) not published: "
        + "; ".join(reason for _, reason in sorted(refused.items())),
        metadata={"refused_dates": ", ".join(d.isoformat() for d in sorted(refused))},
        allow_retries=False,
    )


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
    ):
        done = wap.publish_dates(
            lakehouse, spark.session, table, business_dates(context), context.run_id
        )
        yield from publish_events(done, table, lakehouse, f"gold_{table.name}")
        if done.refused:
            raise refused_failure(done.refused)

    return _publish
