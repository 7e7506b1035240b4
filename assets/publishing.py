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

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from infra import versions, wap
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
    done: wap.Published,
    table: wap.GoldTable,
    lakehouse: LakehouseResource,
    asset_key: str,
    plan: versions.VersionPlan | None = None,
) -> Iterator[MaterializeResult | AssetMaterialization]:
    """What the step reports: one result for the run, or one materialization per published date.

    Dates skipped as unchanged (``plan``) stay published as they were and count as materialized.
    """
    metadata = published_metadata(done, table, lakehouse)
    if plan is not None:
        metadata.update(plan.metadata())
    if not done.refused:
        yield MaterializeResult(asset_key=asset_key, metadata=metadata)
        return
    unchanged = plan.skipped if plan is not None else []
    for day in sorted([*done.published_dates, *unchanged]):
        if day in unchanged:
            yield AssetMaterialization(
                asset_key=asset_key,
                partition=day.isoformat(),
                metadata={**metadata, "unchanged": "staged input unchanged: left as published"},
            )
            continue
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


def publish_step(name: str, staging_step: str) -> versions.Step:
    """A publish step's input: the staged date it publishes (a failed audit reads as a change)."""
    return versions.Step(name, __name__, (versions.Upstream(staging_step),))


def publish_dates_once(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: LakehouseResource,
    plan: versions.VersionPlan,
    table: wap.GoldTable,
    days: list[date],
) -> wap.Published:
    """``wap.publish_dates`` for ``days``; the published ones recorded as done."""
    done = wap.publish_dates(lakehouse, spark.session, table, days, context.run_id)
    versions.record(spark.session, lakehouse, plan, done.published_dates, context.run_id)
    return done


def publish_asset(
    table: wap.GoldTable, staging: AssetsDefinition | AssetKey, description: str
) -> AssetsDefinition:
    """``gold_<table>``: publishes each date of the run whose staged partition passed its audit."""
    step = publish_step(f"gold_{table.name}", f"staging_{table.name}")

    @asset(
        name=f"gold_{table.name}",
        code_version=step.code_version,
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
        plan = versions.plan_run(context, spark.session, lakehouse, step)
        if not plan.to_run:
            yield from plan.unchanged_results(context)
            return
        done = publish_dates_once(context, spark, lakehouse, plan, table, plan.to_run)
        yield from publish_events(done, table, lakehouse, f"gold_{table.name}", plan)
        if done.refused:
            raise refused_failure(done.refused)

    return _publish
