"""The publish step every gold table shares: each date's audited staging partition, or nothing.

``wap.publish_dates`` publishes the run's dates whose latest audit passed and refuses the others
(failed, or never audited). With nothing refused the step materializes every date; otherwise it
records a materialization for each published date alone and then fails, naming the refused dates,
so each shows as failed in its own partition and "re-execute failed" retries only those. The
failure is not retried automatically: a retry cannot change an audit's verdict.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pyspark.sql import DataFrame

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from infra import review, versions, wap
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
    extra: dict | None = None,
) -> Iterator[MaterializeResult | AssetMaterialization]:
    """What the step reports: one result for the run, or one materialization per published date.

    Dates skipped as unchanged (``plan``) stay published as they were and count as materialized.
    ``extra`` is added to the metadata.
    """
    metadata = published_metadata(done, table, lakehouse)
    if plan is not None:
        metadata.update(plan.metadata())
    metadata.update(extra or {})
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
    overlay: Callable[[DataFrame], DataFrame] | None = None,
) -> wap.Published:
    """``wap.publish_dates`` for ``days``; the published ones recorded as done."""
    done = wap.publish_dates(lakehouse, spark.session, table, days, context.run_id, overlay)
    versions.record(spark.session, lakehouse, plan, done.published_dates, context.run_id)
    return done


# What the metadata shows of a decision whose key is gone.
UNMATCHED_COLUMNS = ("decision_id", "key", "business_date", "field", "new_value", "decided_by")


def decisions_metadata(
    spark: SparkResource,
    lakehouse: LakehouseResource,
    reviewed: review.ReviewedTable,
    table: wap.GoldTable,
    decisions: list[dict],
    published: list[date],
) -> dict:
    """What a reviewed table's publish reports of the decisions on its published dates: how
    many are in force and applied, and every one whose key is not in the date's rows any more
    (kept in the ledger, reported here, never dropped silently)."""
    days = set(published)
    mine = [d for d in decisions if d["business_date"] in days]
    if not mine:
        return {"review_decisions_applied": 0, "review_decisions_unmatched": 0}
    session = spark.session
    frame = review.decisions_frame(session, mine)
    rows = wap.read_published_staged(lakehouse, session, table, published)
    unmatched = [r.asDict() for r in reviewed.unmatched(frame, rows).collect()]
    in_force = {(d["key"], d["business_date"], d["field"]) for d in mine}
    return {
        "review_decisions_applied": len(in_force) - len(unmatched),
        "review_decisions_unmatched": len(unmatched),
        "review_decisions_unmatched_list": MetadataValue.json(
            [{k: str(r[k]) for k in UNMATCHED_COLUMNS} for r in unmatched]
        ),
    }


@dataclass(frozen=True)
class Measured:
    """What a publish step measures on every run, dates skipped or not: metadata, and the
    results of its own asset checks (``publish_asset(check_specs=…)``)."""

    metadata: dict
    checks: tuple[AssetCheckResult, ...] = ()


# Measures the published table after the step's publish: (the step's context, spark, lakehouse,
# the run's plan). On a skip it is given the resource, not a session: a measure that can answer
# without Spark (reusing an earlier measurement) does not start it.
Measure = Callable[
    [AssetExecutionContext, SparkResource, LakehouseResource, versions.VersionPlan], Measured
]


def publish_asset(
    table: wap.GoldTable,
    staging: AssetsDefinition | AssetKey,
    description: str,
    reviewed: review.ReviewedTable | None = None,
    check_specs: Sequence[AssetCheckSpec] = (),
    measure: Measure | None = None,
) -> AssetsDefinition:
    """``gold_<table>``: publishes each date of the run whose staged partition passed its audit.

    A ``reviewed`` table gets the analysts' decisions in force on top of the model's output on
    every publish (``ops.review_decisions``); the decisions of a date are an input of its
    publish, so a new decision makes an otherwise unchanged date publish again.

    ``measure`` runs after the publish on every run, also when every date was skipped as
    unchanged: its metadata joins the step's and its check results (of ``check_specs``) are
    reported, before a refused date fails the step.
    """
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
        check_specs=list(check_specs) or None,
        description=description,
    )
    def _publish(
        context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
    ):
        decisions, external, overlay = [], None, None
        if reviewed is not None:
            days = versions.run_dates(context)
            decisions = review.decisions_on(spark.get_session, lakehouse, days, reviewed.name)
            external = review.decision_fingerprints(decisions, days)
        plan = versions.plan_run(context, spark.get_session, lakehouse, step, external=external)
        if not plan.to_run and measure is None:
            yield from plan.unchanged_results(context)
            return
        if not plan.to_run:
            measured = measure(context, spark, lakehouse, plan)
            yield MaterializeResult(
                metadata={
                    **plan.metadata(),
                    "unchanged": "staged input unchanged: left as published",
                    **measured.metadata,
                }
            )
            yield from measured.checks
            return
        if reviewed is not None:
            review.register_ledgers(spark.session, lakehouse, decisions)
            # Also without decisions: gold always has the reviewed_by/reviewed_at columns.
            overlay = reviewed.overlay(review.decisions_frame(spark.session, decisions))
        done = publish_dates_once(context, spark, lakehouse, plan, table, plan.to_run, overlay)
        extra = (
            decisions_metadata(spark, lakehouse, reviewed, table, decisions, done.published_dates)
            if reviewed is not None
            else None
        )
        if extra and extra["review_decisions_unmatched"]:
            context.log.warning(
                f"{extra['review_decisions_unmatched']} review decision(s) on gold.{table.name} "
                "name a key that is not in the published rows any more: kept in "
                "ops.review_decisions, listed in review_decisions_unmatched_list"
            )
        measured = measure(context, spark, lakehouse, plan) if measure is not None else Measured({})
        extra = {**(extra or {}), **measured.metadata}
        yield from publish_events(done, table, lakehouse, f"gold_{table.name}", plan, extra)
        yield from measured.checks
        if done.refused:
            raise refused_failure(done.refused)

    return _publish
