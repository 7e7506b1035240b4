"""One closed lakehouse for the whole session, shared by every end-to-end test that only reads it.

Three business dates (a month end, which is also a pay date, and the two days after) of the
sample landing zone are closed once, in one ranged run as a backfill would run them: the
definitions' job on its threaded executor. Tests that
need their own data (a corrupted enrichment, a fake LLM server) build their own lakehouse.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import JobExecutionResult
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from sample import close as sample_close
from tests.runs import run_close

FIRST, LAST = date(2026, 9, 30), date(2026, 10, 2)  # Wed (month end, pay date) .. Fri
DAYS = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
SEED = 3


@dataclass(frozen=True)
class ClosedLakehouse:
    """Where the session's close lives, and the run that wrote it."""

    root: Path
    result: JobExecutionResult


@pytest.fixture(scope="session")
def closed_lakehouse(tmp_path_factory, spark) -> Iterator[ClosedLakehouse]:
    root = tmp_path_factory.mktemp("close") / "lakehouse"
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_ROOT", str(root))
    mp.delenv("OPENAI_API_KEY", raising=False)
    try:
        sample_close.generate_close(
            root, FIRST, LAST, seed=SEED, gl_lines_per_day=120, employees=24, expense_rows=60
        )
        # Through the definitions' job and its threaded executor, as the UI and the schedule
        # run it (other end-to-end tests use materialize(), which runs steps one at a time).
        result = run_close(
            {
                ASSET_PARTITION_RANGE_START_TAG: FIRST.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: LAST.isoformat(),
            }
        )
        assert result.success, [e.step_key for e in result.get_step_failure_events()]
    finally:
        mp.undo()
    yield ClosedLakehouse(root, result)


@pytest.fixture
def closed(closed_lakehouse: ClosedLakehouse, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's closed lakehouse as this test's ``LAKEHOUSE_ROOT``."""
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(closed_lakehouse.root))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return closed_lakehouse.root
