"""The one write path's answer to a concurrent commit: write again, a bounded number of times.

Spark-free: the conflicts are the exceptions Delta raises (delta-rs's here; Spark's are the same
tuple, exercised with two real processes in ``tests/reliability/test_concurrent_writers.py``).
"""

import pytest
from deltalake.exceptions import CommitFailedError

from infra import lakehouse
from infra.lakehouse import WRITE_ATTEMPTS, Commit, WriteConflictError, retry_conflicts


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(lakehouse.time, "sleep", slept.append)
    return slept


def _losing(times: int, calls: list[int]):
    def write() -> Commit:
        calls.append(1)
        if len(calls) <= times:
            raise CommitFailedError("Transaction failed: version already exists")
        return Commit(7, {"numOutputRows": "3"})

    return write


def test_a_write_that_loses_is_written_again_and_says_how_many_attempts(waits):
    calls: list[int] = []
    commit = retry_conflicts(_losing(2, calls), "gold.expense_lines")
    assert (commit.version, commit.rows, commit.attempts) == (7, 3, 3)
    assert len(calls) == 3 and len(waits) == 2 and waits[1] > 0


def test_a_write_that_keeps_losing_is_refused_naming_the_table(waits):
    calls: list[int] = []
    with pytest.raises(WriteConflictError, match=r"gold\.expense_lines: 4 attempts.*CommitFailed"):
        retry_conflicts(_losing(99, calls), "gold.expense_lines")
    assert len(calls) == WRITE_ATTEMPTS == 4


def test_any_other_error_is_not_retried(waits):
    calls: list[int] = []

    def write() -> None:
        calls.append(1)
        raise ValueError("a row of another date")

    with pytest.raises(ValueError):
        retry_conflicts(write, "gold.expense_lines")
    assert len(calls) == 1 and waits == []
