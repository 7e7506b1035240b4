"""The staging step every enriched gold table shares: enrich, stage, audit, report.

``staged_gold_asset`` builds the asset from a plain function that stages and audits a run's dates
(``stage``: the table's own enrichment and shaping) and one that adds the table's own figures to
the metadata (``describe``). The skeleton around them is the same for every table: dates whose
inputs are unchanged are skipped (``infra/versions.py``), the audited dates are recorded (those
the offline fallback answered as such, so the next run computes them again), over-budget warnings
are logged, and the metadata and per-date asset checks are reported the same way. The publish step
beside it is ``assets/publishing.publish_asset``.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    asset,
)
from pyspark.sql import DataFrame, SparkSession

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from expectations.runner import ValidationReport
from infra import versions, wap
from infra.checks import suite_check_results, suite_check_specs, validation_metadata
from infra.enrichment import (
    EnrichmentResource,
    EnrichmentRun,
    budget_metadata,
    over_budget_warnings,
)
from infra.lakehouse import LakehouseResource
from infra.settings import llm_pool
from infra.spark import SessionSource, SparkResource


@dataclass
class Staged:
    """What staging a run's dates did: the staged version, each date's audit, the enrichment
    calls (empty where the table's enrichment is not an ``EnrichmentResource.enrich`` call), and
    the LLM tokens spent outside such calls (the narrative's staged summaries)."""

    staged_version: int
    reports: dict[date, ValidationReport]
    runs: list[EnrichmentRun] = field(default_factory=list)
    other_tokens: int = 0


# stage(session, lakehouse, enrichment, the dates to compute, run id)
StageFn = Callable[[SparkSession, LakehouseResource, EnrichmentResource, list[date], str], Staged]
# describe(staged rows of the run's dates, what staging did, enrichment): the table's figures
DescribeFn = Callable[[DataFrame, Staged, EnrichmentResource], dict]
# external(context, session, lakehouse): per date, a fingerprint of inputs outside the lakehouse's
# tables that the date's version must include (reviewers' decisions a model learns from)
# A step's external inputs per date (``versions.input_version``): read while planning, so through
# a ``SessionSource`` that a local lakehouse never calls.
ExternalFn = Callable[[AssetExecutionContext, SessionSource, LakehouseResource], dict[date, str]]


def run_metadata(done: Staged, enrichment: EnrichmentResource) -> dict:
    """What every enriching staging step reports of its enrichment calls."""
    if not done.runs:
        return {}
    return {
        "distinct_inputs": sum(r.distinct_inputs for r in done.runs),
        "cache_hits": sum(r.cache_hits for r in done.runs),
        "computed_now": sum(r.computed for r in done.runs),
        **budget_metadata(done.runs, enrichment),
    }


def staged_gold_asset(
    *,
    name: str,
    table: wap.GoldTable,
    step: versions.Step,
    rules: Sequence[tuple],
    deps: Sequence[str],
    stage: StageFn,
    describe: DescribeFn,
    description: str,
    external: ExternalFn | None = None,
) -> AssetsDefinition:
    """The staging asset of an enriched gold table: ``stage`` over the run's changed dates, then
    the same recording, metadata and per-date checks for every table."""
    rule_names = [rule[0] for rule in rules]

    @asset(
        name=name,
        partitions_def=daily_partitions,
        backfill_policy=BACKFILL_POLICY,
        retry_policy=TRANSIENT_RETRY,
        code_version=step.code_version,
        deps=[AssetKey(dep) for dep in deps],
        group_name="staging",
        kinds={"spark", "delta", "openai"},
        check_specs=suite_check_specs(name, list(rules), gated_per_date=True),
        pool=llm_pool(),
        description=description,
    )
    def _staging(
        context: AssetExecutionContext,
        spark: SparkResource,
        lakehouse: LakehouseResource,
        enrichment: EnrichmentResource,
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        plan = versions.plan_run(
            context,
            spark.get_session,
            lakehouse,
            step,
            config=enrichment.version_config(),
            external=external(context, spark.get_session, lakehouse) if external else None,
        )
        if not plan.to_run:
            yield from plan.unchanged_results(context)
            return
        session = spark.session
        context.log.info(f"enrichment by {enrichment.describe()}")
        days = plan.to_run
        done = stage(session, lakehouse, enrichment, days, context.run_id)
        staged = lakehouse.read_dates(session, table.staging, days, done.staged_version)
        versions.record_audited(
            session, lakehouse, plan, done.reports, context.run_id, enrichment.fell_back(staged)
        )
        for warning in over_budget_warnings(done.runs):
            context.log.warning(warning)
        reports = [report for _, report in sorted(done.reports.items())]
        yield MaterializeResult(
            metadata={
                **plan.metadata(),
                "rows": sum(report.rows for report in reports),
                "staged_delta_version": done.staged_version,
                "table": table.staging.qualified,
                "enrichment_provider": enrichment.describe(),
                **run_metadata(done, enrichment),
                **describe(staged, done, enrichment),
                **validation_metadata(reports),
            }
        )
        yield from suite_check_results(
            {day: (report, done.staged_version) for day, report in done.reports.items()},
            name,
            rule_names,
        )

    return _staging
