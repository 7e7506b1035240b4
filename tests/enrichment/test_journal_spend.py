"""A killed run's journaled answers, merged by the next run: cached, and their cost recorded in
``ops.llm_calls`` under the run that paid for them, once (issue 13: a killed run's spend)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from pyspark.sql import functions as F

from enrichment.journal import journal_answers, journal_files
from enrichment.models import STATUS_FAILED, STATUS_OK, RecordOut
from enrichment.prompts import EXPENSE_LINE_TASK
from infra.enrichment_engine import LLM_CACHE, LLM_CALLS, log_calls, merge_journal
from infra.lakehouse import LakehouseResource
from transforms.frames import local_frame

pytestmark = pytest.mark.spark

KILLED = "5b2c7e1e-0f7d-4b8e-9a43-2d3f4c5b6a79"
DAY = date(2026, 3, 31)


def _answer(rid: str, tokens_in: int, status: str = STATUS_OK) -> RecordOut:
    return RecordOut(
        id=rid,
        status=status,
        source="llm",
        model="gpt-4o-mini",
        label="travel_air" if status == STATUS_OK else None,
        confidence=0.9 if status == STATUS_OK else None,
        tokens_in=tokens_in,
        tokens_out=5,
        cost_usd=tokens_in * 1e-6,
        attempts=1,
        error=None if status == STATUS_OK else "boom",
    )


def test_a_killed_runs_journal_is_cached_and_its_spend_logged_once(spark, lakehouse_root):
    lakehouse = LakehouseResource()
    folder = str(lakehouse_root / "_journal" / "llm" / EXPENSE_LINE_TASK.name)
    task = EXPENSE_LINE_TASK
    journal_answers(folder, KILLED, task, [_answer("h1", 100), _answer("h2", 200)])
    # A failure is never journaled: it was not an answer (and is not in the spend either).
    journal_answers(folder, KILLED, task, [_answer("h3", 300, STATUS_FAILED)])
    # Another run's file whose calls its own step had logged before it died: not logged twice.
    journal_answers(folder, "run-2", task, [_answer("h4", 400)])
    logged = local_frame(
        spark,
        [("run-2", DAY, task.name, "h4", STATUS_OK, 400, 5)],
        "run_id string, business_date date, task string, input_hash string, "
        "enrichment_status string, tokens_in int, tokens_out int",
    ).withColumn("called_at", F.current_timestamp())
    log_calls(lakehouse, logged)

    assert merge_journal(lakehouse, spark, folder, task, DAY) == 3

    calls = {
        (r["run_id"], r["input_hash"]): (r["tokens_in"], r["business_date"], r["task"])
        for r in lakehouse.read(spark, LLM_CALLS).collect()
    }
    assert calls == {
        (KILLED, "h1"): (100, DAY, task.name),
        (KILLED, "h2"): (200, DAY, task.name),
        ("run-2", "h4"): (400, DAY, task.name),
    }
    cached = {r["input_hash"] for r in lakehouse.read(spark, LLM_CACHE).collect()}
    assert cached == {"h1", "h2", "h4"}
    assert journal_files(folder) == []
    # Nothing left to merge: a second merge logs nothing more.
    assert merge_journal(lakehouse, spark, folder, task, DAY) == 0
    assert lakehouse.read(spark, LLM_CALLS).count() == 3


def test_steps_logging_calls_at_once_on_a_new_lakehouse_all_land(spark, lakehouse_root):
    """Several staging steps enrich at once: on a new lakehouse the first of them create
    ``ops.llm_calls`` together, and the losers of that race write again instead of failing their
    step (it cost a step retry in half the fresh one-date closes)."""
    lakehouse = LakehouseResource()
    schema = (
        "run_id string, business_date date, task string, input_hash string, "
        "enrichment_status string, tokens_in int, tokens_out int"
    )
    frames = [
        local_frame(spark, [(f"run-{i}", DAY, "t", f"h{i}", STATUS_OK, i, 1)], schema).withColumn(
            "called_at", F.current_timestamp()
        )
        for i in range(4)
    ]
    barrier = threading.Barrier(len(frames))

    def log(frame):
        barrier.wait()
        log_calls(lakehouse, frame)

    with ThreadPoolExecutor(len(frames)) as pool:
        for future in [pool.submit(log, frame) for frame in frames]:
            future.result()
    logged = sorted(r["input_hash"] for r in lakehouse.read(spark, LLM_CALLS).collect())
    assert logged == ["h0", "h1", "h2", "h3"]
