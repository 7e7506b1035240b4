"""The threaded executor (``infra/executor.py``) on small Spark-free jobs, through ``execute_job``.

Steps that can run at once do (a barrier only two concurrent steps pass), steps of one pool do
not, a failed step skips what needs it while the rest of the run goes on, a retry policy retries,
and resources are initialised once for the run and shared by its threads.
"""

import threading
import time

import pytest
from dagster import (
    DagsterInstance,
    In,
    Nothing,
    RetryPolicy,
    execute_job,
    job,
    op,
    reconstructable,
    resource,
)

from infra.executor import ThreadedExecutor, threaded_executor

_BARRIER = threading.Barrier(2, timeout=20)
_LOG: list[tuple[str, str, float]] = []
_LOCK = threading.Lock()
_ATTEMPTS: dict[str, int] = {}


def _note(step: str, what: str) -> None:
    with _LOCK:
        _LOG.append((step, what, time.monotonic()))


@resource
def counted(_):
    _note("counted", "init")
    return object()


@op(required_resource_keys={"counted"})
def left(context) -> None:
    _note("left", "start")
    _BARRIER.wait()  # passes only if "right" runs meanwhile
    _note("left", "end")


@op(required_resource_keys={"counted"})
def right(context) -> None:
    _note("right", "start")
    _BARRIER.wait()
    _note("right", "end")


@op(ins={"after": In(Nothing)})
def joined() -> None:
    _note("joined", "start")


@op(pool="llm")
def pooled_a() -> None:
    _note("pooled_a", "start")
    time.sleep(0.5)
    _note("pooled_a", "end")


@op(pool="llm")
def pooled_b() -> None:
    _note("pooled_b", "start")
    time.sleep(0.5)
    _note("pooled_b", "end")


@op
def broken() -> None:
    raise ValueError("this step fails")


@op(ins={"after": In(Nothing)})
def after_broken() -> None:
    _note("after_broken", "start")


@op
def independent() -> None:
    time.sleep(0.3)
    _note("independent", "end")


@op(retry_policy=RetryPolicy(max_retries=2))
def flaky() -> None:
    _ATTEMPTS["flaky"] = _ATTEMPTS.get("flaky", 0) + 1
    if _ATTEMPTS["flaky"] < 2:
        raise RuntimeError("transient")
    _note("flaky", "end")


@job(executor_def=threaded_executor, resource_defs={"counted": counted})
def concurrent_job():
    joined(after=[left(), right()])


@job(executor_def=threaded_executor)
def pooled_job():
    pooled_a()
    pooled_b()


@job(executor_def=threaded_executor)
def failing_job():
    after_broken(after=[broken()])
    independent()
    flaky()


def _run(job_fn):
    _LOG.clear()
    _ATTEMPTS.clear()
    with (
        DagsterInstance.ephemeral() as instance,
        execute_job(reconstructable(job_fn), instance=instance, raise_on_error=False) as result,
    ):
        return (
            result.success,
            {e.step_key for e in result.get_step_failure_events()},
            [e.step_key for e in result.get_step_success_events()],
        )


def _span(step: str) -> tuple[float, float]:
    times = [t for s, _, t in _LOG if s == step]
    return min(times), max(times)


def test_ready_steps_run_at_once_on_one_set_of_resources():
    success, failed, succeeded = _run(concurrent_job)
    assert success and not failed
    assert set(succeeded) == {"left", "right", "joined"}
    # The barrier let both through, so they ran at once; "joined" waited for both.
    assert _span("joined")[0] >= max(_span("left")[1], _span("right")[1])
    # One resource for the run, shared by the threads (the result's reader makes another later).
    first_step = min(_span("left")[0], _span("right")[0])
    assert len([t for s, _, t in _LOG if s == "counted" and t <= first_step]) == 1


def test_steps_of_one_pool_run_one_at_a_time():
    success, failed, _ = _run(pooled_job)
    assert success and not failed
    a, b = _span("pooled_a"), _span("pooled_b")
    assert a[1] <= b[0] or b[1] <= a[0], (a, b)


def test_a_failed_step_skips_what_needs_it_and_the_rest_runs_and_retries():
    success, failed, succeeded = _run(failing_job)
    assert not success
    assert failed == {"broken"}
    assert "after_broken" not in succeeded and not [s for s, *_ in _LOG if s == "after_broken"]
    assert {"independent", "flaky"} <= set(succeeded)
    assert _ATTEMPTS["flaky"] == 2


def test_at_least_one_step_at_a_time():
    with pytest.raises(ValueError, match="at least 1"):
        ThreadedExecutor(retries=None, max_concurrent=0)  # type: ignore[arg-type]


def test_step_threads_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("STEP_THREADS", "1")
    assert ThreadedExecutor(retries=None).max_concurrent == 1  # type: ignore[arg-type]
    monkeypatch.delenv("STEP_THREADS")
    assert ThreadedExecutor(retries=None).max_concurrent == 3  # type: ignore[arg-type]
    monkeypatch.setenv("STEP_THREADS", "two")
    with pytest.raises(ValueError, match="STEP_THREADS is a whole number"):
        ThreadedExecutor(retries=None)  # type: ignore[arg-type]
