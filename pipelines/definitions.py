"""The Dagster ``Definitions``: only wiring, no logic."""

from dagster import Definitions, JobDefinition, load_assets_from_modules

from assets import (
    close,
    documents,
    exception_notes,
    expenses,
    hr_cases,
    narrative,
    review_queue,
    sources,
)
from infra.enrichment import EnrichmentResource
from infra.executor import threaded_executor
from infra.lakehouse import LakehouseResource
from infra.spark import SparkResource
from pipelines.jobs import daily_close_job, nightly_close_schedule
from pipelines.sensors import landing_zone_sensor


def build_resources() -> dict:
    """Resources from the environment (``LAKEHOUSE_ROOT``, ``SPARK_MASTER``, ``OPENAI_*``)."""
    return {
        "spark": SparkResource(),
        "lakehouse": LakehouseResource(),
        "enrichment": EnrichmentResource.from_env(),
    }


all_assets = [
    *sources.source_assets,
    *load_assets_from_modules(
        [expenses, hr_cases, close, narrative, exception_notes, review_queue, documents]
    ),
]

defs = Definitions(
    assets=all_assets,
    jobs=[daily_close_job],
    schedules=[nightly_close_schedule],
    sensors=[landing_zone_sensor],
    resources=build_resources(),
    # One process and one Spark driver per run, its ready steps run at once in threads.
    executor=threaded_executor,
)


def close_job() -> JobDefinition:
    """The close (every asset) as a job: what ``cli run`` executes, found again by name."""
    return defs.resolve_job_def(daily_close_job.name)
