"""A small code location for the live run-monitoring case (``test_run_monitoring.py``).

Spark-free, three assets run by the project's executor (``infra/executor.py``: steps in threads of
the run worker, as ``pipelines/definitions.py`` runs them): ``prepared``, then ``enriched`` in the
``llm`` pool, then ``published``. On a run's first attempt (a run with no
``dagster/parent_run_id``), ``enriched`` writes its process id (the run worker's) to
``$MONITORED_DIR/<run_id>.pid`` and sleeps, holding its pool slot, until the test kills its worker
or run monitoring ends the run; a retry goes straight through. In a run tagged ``monitored/fail``,
``enriched`` fails on its own instead (a step failure).
"""

import os
import time
from pathlib import Path

from dagster import AssetExecutionContext, Definitions, asset, define_asset_job

from infra.executor import threaded_executor

JOB = "monitored"
HOLD_SECONDS = 600
FAIL_TAG = "monitored/fail"


@asset
def prepared() -> int:
    return 1


@asset(pool="llm")
def enriched(context: AssetExecutionContext, prepared: int) -> int:
    if FAIL_TAG in context.run.tags:
        raise RuntimeError("enriched failed on its own")
    if context.run.parent_run_id is None:
        pid_file = Path(os.environ["MONITORED_DIR"]) / f"{context.run.run_id}.pid"
        pid_file.write_text(str(os.getpid()))
        time.sleep(HOLD_SECONDS)
    return prepared + 1


@asset
def published(enriched: int) -> int:
    return enriched + 1


defs = Definitions(
    assets=[prepared, enriched, published],
    jobs=[define_asset_job(JOB)],
    executor=threaded_executor,
)
