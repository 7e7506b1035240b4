"""``infra.spark.in_threads``: a step's independent tasks at once, results in the tasks' order
(Spark-free: the tasks here are plain functions)."""

import threading
import time

import pytest

from infra.spark import in_threads
from transforms.recon.common import in_order


def test_tasks_run_at_once_and_results_come_back_in_their_order():
    barrier = threading.Barrier(3, timeout=10)  # passes only if all three run at once

    def task(value: int, delay: float):
        def run() -> int:
            barrier.wait()
            time.sleep(delay)
            return value

        return run

    # The first task ends last: its result is still first.
    assert in_threads(3)([task(1, 0.3), task(2, 0.0), task(3, 0.1)]) == [1, 2, 3]


def test_the_first_failure_is_raised_after_the_other_tasks_have_ended():
    ended = []

    def slow() -> str:
        time.sleep(0.3)
        ended.append("slow")
        return "slow"

    def broken() -> str:
        raise ValueError("this task fails")

    with pytest.raises(ValueError, match="this task fails"):
        in_threads(2)([broken, slow])
    assert ended == ["slow"]


def test_one_task_or_one_worker_runs_in_the_callers_thread():
    caller = threading.get_ident()
    assert in_threads(3)([threading.get_ident]) == [caller]
    assert in_threads(1)([threading.get_ident, threading.get_ident]) == [caller, caller]
    assert in_threads()([]) == []


def test_the_transforms_default_runs_in_order():
    seen = []
    assert in_order([lambda: seen.append(1) or "a", lambda: seen.append(2) or "b"]) == ["a", "b"]
    assert seen == [1, 2]
