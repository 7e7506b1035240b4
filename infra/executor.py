"""A Dagster executor that runs a run's ready steps in threads of one process, on one set of
resources.

Every step of this project drives one SparkSession: a run has one Spark driver (the embedded
metastore admits one, and a driver takes seconds to start). Dagster's in-process executor runs the
steps one after another, so while a step waits on its Delta commit, on a Spark job's scheduling
or on the JVM's planning, the machine's other core idles; its multiprocess executor would start a
Python process, the code location's imports and a Spark driver for every step. This executor keeps
the one process and its resources and runs up to ``max_concurrent`` ready steps at once
(``STEP_THREADS``, 3), each in a thread: Spark's scheduler takes jobs from several threads, and
Delta's optimistic commits settle concurrent writers of one table
(``infra/lakehouse.py::retry_conflicts``).

What the threads share is made safe where it is shared: the Spark catalog's registrations and the
GX context are taken one thread at a time (``infra/lakehouse.py``, ``expectations/runner.py``),
and the run's LLM budget is counted under a lock (``infra/enrichment.py``). Steps of a
concurrency pool (``llm``) run one at a time within a run; the instance's pool limits apply
across runs as with Dagster's own executors.

A termination request stops new steps at once; a running step is interrupted at its next Python
instruction and reports its failure. A step that cannot take the interruption within
``INTERRUPT_GRACE_S`` (a thread blocked in a call: a sleep, a Spark job it waits on) is not waited
for: the run ends interrupted, as in Dagster's own executors, and the thread ends with the run's
process.
"""

import contextlib
import ctypes
import itertools
import os
import queue
import threading
import time
from _thread import LockType
from collections import defaultdict
from collections.abc import Iterator

from dagster import Field, IntSource, executor
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import dagster_event_sequence_for_step
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.execution.step_dependency_config import (
    StepDependencyConfig,
    get_step_dependency_config_field,
)
from dagster._core.executor.base import Executor

from infra.settings import step_threads

_POLL_S = 0.5
# After a termination request, how long running steps get to report their interruption.
INTERRUPT_GRACE_S = 5.0
_DONE = object()


class ThreadedExecutor(Executor):
    """Runs the plan's ready steps in up to ``max_concurrent`` threads of this process."""

    def __init__(
        self,
        retries: RetryMode,
        max_concurrent: int | None = None,
        step_dependency_config: StepDependencyConfig | None = None,
    ) -> None:
        max_concurrent = step_threads() if max_concurrent is None else max_concurrent
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        self._retries = retries
        self.max_concurrent = max_concurrent
        self._step_dependency_config = step_dependency_config or StepDependencyConfig.default()

    @property
    def retries(self) -> RetryMode:
        return self._retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._step_dependency_config

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        steps = execution_plan.step_keys_to_execute
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {os.getpid()}), up to {self.max_concurrent} at "
            "once in threads",
            event_specific_data=EngineEventData.in_process(os.getpid(), steps),
        )
        yield from iter(
            ExecuteRunWithPlanIterable(
                execution_plan=plan_context.execution_plan,
                iterator=self._iterate,
                execution_context_manager=PlanExecutionContextManager(
                    job=plan_context.job,
                    retry_mode=plan_context.retry_mode,
                    execution_plan=plan_context.execution_plan,
                    run_config=plan_context.run_config,
                    dagster_run=plan_context.dagster_run,
                    instance=plan_context.instance,
                    raise_on_error=plan_context.raise_on_error,
                    output_capture=plan_context.output_capture,
                    step_dependency_config=self.step_dependency_config,
                ),
            )
        )
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(os.getpid(), steps),
        )

    def _iterate(
        self, job_context: PlanExecutionContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        compute_logs = job_context.instance.compute_log_manager
        step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
        with (
            InstanceConcurrencyContext(
                job_context.instance, job_context.dagster_run
            ) as instance_concurrency,
            execution_plan.start(
                retry_mode=job_context.retry_mode,
                max_concurrent=self.max_concurrent,
                instance_concurrency_context=instance_concurrency,
                step_dependency_config=job_context.step_dependency_config,
            ) as active,
        ):
            log_key = compute_logs.build_log_key_for_run(
                job_context.run_id, create_compute_log_file_key()
            )
            with compute_logs.capture_logs(log_key) as log_context:
                yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)
                yield from _run_threads(job_context, active, self.max_concurrent)


def _run_threads(job_context: PlanExecutionContext, active, limit: int) -> Iterator[DagsterEvent]:
    """Start ready steps in threads, hand their events to ``active`` in this thread, until done."""
    events: queue.Queue = queue.Queue()
    # Attempt number -> (step key, thread): a retried step's next attempt may start before its
    # previous thread has ended.
    running: dict[int, tuple[str, threading.Thread]] = {}
    attempts = itertools.count()
    # One step of a pool at a time within the run (the instance limits pools across runs).
    pools: dict[str, LockType] = defaultdict(threading.Lock)
    interrupted: float | None = None  # when a termination was requested
    failure: BaseException | None = None
    try:
        while (running and not _grace_over(interrupted)) or (
            interrupted is None and failure is None and not active.is_complete
        ):
            if interrupted is None and active.check_for_interrupts():
                interrupted = time.monotonic()
                active.mark_interrupted()
                yield DagsterEvent.engine_event(
                    job_context,
                    "Threaded executor: termination requested; interrupting the running steps",
                    EngineEventData.interrupted([key for key, _ in running.values()]),
                )
                for _, thread in running.values():
                    _interrupt(thread)
            if interrupted is None and failure is None:
                for step in active.get_steps_to_execute(limit=limit - len(running)):
                    step_context = job_context.for_step(step, active.get_known_state())
                    attempt = next(attempts)
                    thread = threading.Thread(
                        target=_run_step,
                        args=(
                            attempt,
                            step_context,
                            events,
                            pools[step.pool] if step.pool else None,
                        ),
                        name=f"step-{step.key}",
                        daemon=True,
                    )
                    running[attempt] = (step.key, thread)
                    thread.start()
                yield from active.concurrency_event_iterator(job_context)
            if not running:
                active.sleep_til_ready()
                continue
            try:
                attempt, item = events.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _DONE:
                key, thread = running.pop(attempt)
                thread.join()
                if all(other != key for other, _ in running.values()):
                    active.verify_complete(job_context, key)
                yield from active.plan_events_iterator(job_context)
            elif isinstance(item, BaseException):
                # Raised through the step's own error handling: an interruption, or a step
                # error re-raised under raise_on_error. Raised once the others end.
                if not isinstance(item, (KeyboardInterrupt, DagsterExecutionInterruptedError)):
                    failure = failure or item
            else:
                yield item
                active.handle_event(item)
    except BaseException:
        for _, thread in running.values():
            _interrupt(thread)
        raise
    if failure is not None:
        raise failure
    if interrupted is not None:
        # Steps still running past the grace (a thread blocked in a call) end with the process.
        raise DagsterExecutionInterruptedError()


def _run_step(attempt: int, step_context, events: queue.Queue, pool: LockType | None) -> None:
    try:
        with pool or contextlib.nullcontext():
            for event in dagster_event_sequence_for_step(step_context):
                events.put((attempt, event))
    except BaseException as error:  # handed to the executor's thread, which decides
        events.put((attempt, error))
    finally:
        events.put((attempt, _DONE))


def _grace_over(interrupted: float | None) -> bool:
    """Whether a termination requested at ``interrupted`` has waited its grace for the steps."""
    return interrupted is not None and time.monotonic() - interrupted > INTERRUPT_GRACE_S


def _interrupt(thread: threading.Thread) -> None:
    """Raise ``DagsterExecutionInterruptedError`` in ``thread`` at its next Python instruction."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(DagsterExecutionInterruptedError)
        )


@executor(
    name="threaded",
    config_schema={
        "retries": get_retries_config(),
        "max_concurrent": Field(
            IntSource,
            is_required=False,
            description="Steps run at once, each in a thread of the run's process (default: "
            "STEP_THREADS, 3).",
        ),
        "step_dependency_config": get_step_dependency_config_field(),
    },
)
def threaded_executor(init_context) -> ThreadedExecutor:
    """Runs a run's ready steps in threads of its process, sharing its resources."""
    config = init_context.executor_config
    return ThreadedExecutor(
        retries=RetryMode.from_config(config["retries"]),
        max_concurrent=config.get("max_concurrent"),
        step_dependency_config=StepDependencyConfig.from_config(
            config.get("step_dependency_config")
        ),
    )
