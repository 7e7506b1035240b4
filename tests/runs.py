"""Runs of the close as the UI, the schedule and ``cli run`` start them: the definitions' job on
its threaded executor (``infra/executor.py``), in this process (so on the session's Spark)."""

from collections.abc import Mapping

from dagster import AssetKey, DagsterInstance, JobExecutionResult, execute_job, reconstructable

from pipelines.definitions import close_job


def run_close(
    tags: Mapping[str, str], asset_selection: list[AssetKey] | None = None
) -> JobExecutionResult:
    """Run the close (``asset_selection`` of it) for the dates ``tags`` name, on an ephemeral
    instance; the result, whatever it is (``raise_on_error`` off, as in the UI)."""
    with (
        DagsterInstance.ephemeral() as instance,
        execute_job(
            reconstructable(close_job),
            instance=instance,
            tags=dict(tags),
            asset_selection=asset_selection,
            raise_on_error=False,
        ) as result,
    ):
        return result
