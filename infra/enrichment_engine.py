"""The enrichment engine: what one enrichment step does with the lakehouse, stage by stage.

``EnrichmentResource`` (``infra/enrichment.py``) holds the configuration and what the run has
spent; this module does the work of ``EnrichmentResource.enrich``, in the order it happens:

1. ``prepare_inputs``: redact and hash each row's text once (checkpointed), one row per distinct
   input with the date its call is logged under;
2. ``split_by_cache``: inputs answered before (``ops.llm_cache``) against the misses;
3. ``budget_misses``: with an LLM, count the misses, spread them over the provider's tasks and
   estimate their tokens with tiktoken before anything is sent (the ``fail`` policy stops here);
4. ``call_and_log``: call the provider once per miss inside one Spark job that appends every
   outcome to ``ops.llm_calls``, then merge the successful answers into the cache
   (``remember_answers``);
5. ``tally``: what the step cost and how its rows were answered (``EnrichmentRun``).

The cache tables' writers (``insert_absent_keys``, ``merge_journal``) and the call log's
(``log_calls``) live here too: every task's calls and cache entries go through them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from enrichment.journal import journal_files, journal_run, read_answers
from enrichment.models import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, TaskSpec
from enrichment.providers import ProviderConfig
from enrichment.providers.base import EMBEDDED
from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from infra.lakehouse import LakehouseResource, TableRef, retry_conflicts
from transforms.enrich import (
    ENRICH_TEXT,
    INJECTION_SUSPECTED,
    INPUT_HASH,
    OUTCOME_COLUMNS,
    OUTCOME_SCHEMA,
    as_cache_hits,
    call_provider,
    estimate_request_tokens,
    with_enrichment_input,
)
from transforms.frames import local_frame

if TYPE_CHECKING:
    from infra.enrichment import EnrichmentResource

LLM_CACHE = TableRef("ops", "llm_cache")
LLM_CALLS = TableRef("ops", "llm_calls")
GROUP_SUMMARY_CACHE = TableRef("ops", "group_summary_cache")
# The date an input's provider call is logged under in a ranged enrichment.
CALL_DATE = "_call_date"

BUDGET_POLICIES = ("warn", "fail")
# How a breaker's reason reads in a row's error (enrichment/breaker.py).
CIRCUIT_OPEN = "circuit open after"
AUTH_OPENED = "authentication error"


class TokenBudgetExceededError(RuntimeError):
    """The run's token budget does not (or did not) cover the work, and the policy is ``fail``."""


@dataclass
class EnrichmentRun:
    """What one enrichment step did: its outcomes per input row, and what it cost."""

    rows: DataFrame
    provider: str
    model: str
    distinct_inputs: int
    cache_hits: int
    computed: int
    # Counted with tiktoken before any request (0 when no LLM is configured).
    estimated_input_tokens: int = 0
    estimated_requests: int = 0
    tokens_spent: int = 0
    skipped_for_budget: int = 0
    # The run's budget left when this step started, and whether the estimate exceeded it.
    budget_left: int = 0
    over_budget_estimate: bool = False
    # Set when a model trained on labelled history answered part of the rows.
    history_model: str | None = None
    # Whether this call trained (and registered) it, rather than loading it.
    history_model_trained: bool = False
    model_labelled: int = 0
    routed_to_provider: int = 0
    # What reviewers' labels in the history model's training changed (infra/history_models.py,
    # effect_metadata); empty when it had none.
    history_model_learning: dict = field(default_factory=dict)
    # The LLM did not answer: rows the offline fallback answered, rows left failed, and the
    # circuit breaker's reason when it opened (rows it stopped carry it in their error).
    fallback_rows: int = 0
    failed_rows: int = 0
    circuit_open: str | None = None


def breaker_reason(error: str | None) -> str | None:
    """The breaker's reason in a row's error (a fallback row's error quotes it), or None."""
    if not error:
        return None
    return error.removeprefix(FALLBACK_ERROR_PREFIX)


# --- the call log and the cache tables ---------------------------------------------------------


def log_calls(lakehouse: LakehouseResource, calls: DataFrame) -> None:
    """Append provider outcomes (``run_id``, ``business_date``, ``task``, ``called_at`` and the
    outcome columns) to ``ops.llm_calls``, the one record of what every call cost."""
    # One commit, written again when it loses to a concurrent one (several steps enrich at once,
    # and on a new lakehouse the first of them create the table together); mergeSchema: outcome
    # columns added in a later version evolve an existing call log.
    lakehouse.append(calls, LLM_CALLS)


def insert_absent_keys(lakehouse: LakehouseResource, table: TableRef, rows: DataFrame) -> None:
    """Merge ``rows`` into a cache table keyed by ``input_hash``, adding only absent keys.

    Concurrent runs may race on the same keys: Delta's optimistic concurrency makes the loser
    write again (``retry_conflicts``), and the insert-only-if-absent merge then finds the key and
    adds nothing.
    """
    spark = rows.sparkSession
    path = lakehouse.path(table)

    def merge() -> None:
        DeltaTable.createIfNotExists(spark).location(path).addColumns(rows.schema).execute()
        (
            DeltaTable.forPath(spark, path)
            .alias("c")
            .merge(rows.alias("n"), "c.input_hash = n.input_hash")
            .withSchemaEvolution()
            .whenNotMatchedInsertAll()
            .execute()
        )

    retry_conflicts(merge, table.qualified)
    lakehouse.register(spark, table)


def merge_journal(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    folder: str,
    task: TaskSpec,
    day: date | None = None,
) -> int:
    """Merge a journal folder's answers into ``ops.llm_cache`` (absent keys only), record what
    they cost in ``ops.llm_calls``, then delete the files merged; the number of answers read.

    The journal holds the chat route's successful answers as they arrived, including a killed
    run's (``enrichment/journal.py``): they are what that run paid for. Their calls go to the
    call log under the run that paid (named by the file) and ``day`` (the date of the step that
    found them: the journal does not say which of the killed run's dates asked); an answer the
    call log already holds for that run and task (a run killed after its log was written, before
    its files were deleted) is not logged twice. Without ``day`` only the cache is merged.
    """
    files = journal_files(folder)
    answers = read_answers(files)
    if answers:
        rows = local_frame(spark, answers, OUTCOME_SCHEMA)
        insert_absent_keys(
            lakehouse,
            LLM_CACHE,
            rows.withColumn("task", F.lit(task.name)).withColumn(
                "cached_at", F.current_timestamp()
            ),
        )
        if day is not None:
            log_recovered_calls(lakehouse, spark, files, task, day)
    for merged in files:
        merged.unlink(missing_ok=True)
    return len(answers)


def log_recovered_calls(
    lakehouse: LakehouseResource, spark: SparkSession, files: list[Path], task: TaskSpec, day: date
) -> None:
    """Append the journal ``files``' answers to ``ops.llm_calls`` under the runs that paid for
    them, leaving out those the call log holds already (same run, task and input)."""
    # One frame for every run's answers, each under the run its journal file names.
    answers = [
        {**answer, "run_id": journal_run(path)} for path in files for answer in read_answers([path])
    ]
    calls = local_frame(spark, answers, f"{OUTCOME_SCHEMA}, run_id string")
    if lakehouse.exists(spark, LLM_CALLS):
        logged = (
            lakehouse.read(spark, LLM_CALLS)
            .where(F.col("task") == task.name)
            .select("run_id", INPUT_HASH)
        )
        calls = calls.join(logged, ["run_id", INPUT_HASH], "left_anti")
    log_calls(
        lakehouse,
        calls.select(
            "run_id",
            F.lit(day).cast("date").alias("business_date"),
            F.lit(task.name).alias("task"),
            F.current_timestamp().alias("called_at"),
            *OUTCOME_COLUMNS,
        ),
    )


def remember_answers(
    lakehouse: LakehouseResource, fresh: DataFrame, task: TaskSpec, config: ProviderConfig
) -> None:
    """Merge a step's successful outcomes into ``ops.llm_cache``, once per key.

    Only answers of the model the key names: an offline fallback answer is never cached as the
    LLM's, so the next run against a healthy endpoint sends those records again.
    """
    ok = (
        fresh.where(F.col("enrichment_status") == STATUS_OK)
        .where(F.col("model") == config.model_id)
        .withColumn("task", F.lit(task.name))
        .withColumn("cached_at", F.current_timestamp())
    )
    insert_absent_keys(lakehouse, LLM_CACHE, ok)


# --- the stages of one enrichment ---------------------------------------------------------------


@dataclass
class Inputs:
    """A step's rows with their redacted text and hash (``rows``), and one row per distinct
    input with the date its call is logged under (``distinct``)."""

    rows: DataFrame
    distinct: DataFrame


def prepare_inputs(
    rows: DataFrame,
    text: Column,
    task: TaskSpec,
    config: ProviderConfig,
    days: list[date],
    names: Sequence[str] | Mapping[date, Sequence[str]],
) -> Inputs:
    """Redact and hash each row's text, once: checkpointed, because the cache lookup, the calls,
    the counts and the caller's join back all read it (recomputed, it cost three passes of the
    redaction's UDF per step: staging_hr_cases spent 28 of its 60 s on three dates)."""
    prepared = rows.transform(with_enrichment_input(text, task, config, names)).localCheckpoint()
    # The date an input's call is logged under: the first of the run's dates it appears on.
    call_date = (
        F.lit(days[0]).cast("date")
        if len(days) == 1
        else F.min(F.col("business_date")).cast("date")
    )
    distinct = prepared.groupBy(INPUT_HASH).agg(
        F.first(ENRICH_TEXT).alias(ENRICH_TEXT),
        F.first(INJECTION_SUSPECTED).alias(INJECTION_SUSPECTED),
        call_date.alias(CALL_DATE),
    )
    return Inputs(prepared, distinct)


def split_by_cache(
    lakehouse: LakehouseResource, spark: SparkSession, distinct: DataFrame
) -> tuple[DataFrame | None, DataFrame]:
    """``(hits, misses)``: the distinct inputs ``ops.llm_cache`` answers (as cache outcomes, as
    of one version of it) and those it does not; no hits before the cache exists."""
    if not lakehouse.exists(spark, LLM_CACHE):
        return None, distinct
    version = lakehouse.version(spark, LLM_CACHE)
    cache = lakehouse.read(spark, LLM_CACHE, version).where(F.col("enrichment_status") == STATUS_OK)
    hits = as_cache_hits(cache.join(distinct.select(INPUT_HASH), INPUT_HASH, "left_semi"))
    return hits, distinct.join(cache.select(INPUT_HASH), INPUT_HASH, "left_anti")


@dataclass
class Budgeted:
    """The misses as the provider will be called with them, and what that is estimated to cost.

    ``persisted`` are the frames to unpersist once the calls are logged.
    """

    misses: DataFrame
    config: ProviderConfig
    estimated_tokens: int = 0
    estimated_requests: int = 0
    persisted: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        for frame in self.persisted:
            frame.unpersist()


def budget_misses(
    resource: "EnrichmentResource",
    misses: DataFrame,
    task: TaskSpec,
    config: ProviderConfig,
    run_id: str,
    journal: str | None,
    when: str,
    ranged: bool,
) -> Budgeted:
    """Prepare the misses for the provider and estimate their tokens before anything is sent.

    With an LLM: bounded concurrency (at most ``max_concurrency`` Spark tasks talk to the
    provider at once, each within its share of the run's rate limits and budget, and no more
    tasks than there are full requests), and tiktoken's estimate of the requests; under the
    ``fail`` policy an estimate over the budget left raises ``TokenBudgetExceededError`` with
    nothing sent. Offline a ranged step's misses are persisted (read twice: the call and its
    dates), and nothing is estimated.
    """
    if config.kind == EMBEDDED:
        if not ranged:
            return Budgeted(misses, config)
        persisted = misses.persist()
        return Budgeted(persisted, config, persisted=[persisted])
    if resource.budget_policy not in BUDGET_POLICIES:
        raise ValueError(f"LLM_BUDGET_POLICY must be warn or fail, not {resource.budget_policy!r}")
    # Persisted: the estimate and the call read the same partitions, and the inputs are
    # redacted once.
    computed = misses.persist()
    pending = computed.count()
    tasks = max(1, min(resource.max_concurrency, -(-pending // resource.max_records_per_request)))
    spread = computed.repartition(tasks, INPUT_HASH).persist()
    config = resource.call_config(task, run_id, tasks)
    if journal is not None:
        config = replace(config, journal_dir=journal, journal_run=run_id)
    budgeted = Budgeted(spread, config, persisted=[spread, computed])
    row = (
        spread.transform(estimate_request_tokens(task, config, config.model_id))
        .agg(F.sum("input_tokens"), F.sum("requests"))
        .first()
    )
    budgeted.estimated_tokens, budgeted.estimated_requests = int(row[0] or 0), int(row[1] or 0)
    budget_left = resource.budget_left
    if budgeted.estimated_tokens > budget_left and resource.budget_policy == "fail":
        budgeted.release()
        raise TokenBudgetExceededError(
            f"{task.name} {when}: about {budgeted.estimated_tokens:,} input tokens in "
            f"{budgeted.estimated_requests:,} requests, but the run has {budget_left:,} tokens "
            f"left of LLM_RUN_TOKEN_BUDGET={resource.run_token_budget:,}; nothing was sent"
        )
    return budgeted


def call_and_log(
    lakehouse: LakehouseResource,
    budgeted: Budgeted,
    task: TaskSpec,
    days: list[date],
    run_id: str,
    journal: str | None,
) -> DataFrame:
    """Call the provider once per miss, inside the one Spark job that appends the outcomes to
    ``ops.llm_calls``; merge the successful answers into the cache, and delete the journal files
    they came through. Returns this step's outcomes, read back from the call log (so nothing is
    called, or paid, twice)."""
    spark = budgeted.misses.sparkSession
    called = budgeted.misses.transform(call_provider(task, budgeted.config))
    if len(days) > 1:
        # The provider's outcomes carry the hash only; the call's date comes back by a join
        # (the provider is still called once per input, inside the write's one job).
        called = called.join(budgeted.misses.select(INPUT_HASH, CALL_DATE), INPUT_HASH)
    else:
        called = called.withColumn(CALL_DATE, F.lit(days[0]).cast("date"))
    log_calls(
        lakehouse,
        called.select(
            F.lit(run_id).alias("run_id"),
            F.col(CALL_DATE).alias("business_date"),
            F.lit(task.name).alias("task"),
            F.current_timestamp().alias("called_at"),
            *OUTCOME_COLUMNS,
        ),
    )
    fresh = (
        lakehouse.read(spark, LLM_CALLS)
        .where((F.col("run_id") == run_id) & (F.col("task") == task.name))
        .where(F.col("business_date").isin([F.lit(d) for d in days]))
        .select(*OUTCOME_COLUMNS)
    )
    remember_answers(lakehouse, fresh, task, budgeted.config)
    if journal is not None:
        for answered in journal_files(journal, run_id):  # in the cache now
            answered.unlink(missing_ok=True)
    budgeted.release()
    return fresh


@dataclass(frozen=True)
class Tally:
    """How a step's distinct inputs were answered, and what the provider's calls cost."""

    by_source: dict[str, int]
    spent: int
    skipped: int
    fallback_rows: int
    failed_rows: int
    circuit: str | None


def tally(fresh: DataFrame, results: DataFrame) -> Tally:
    """Count ``results`` by source, and this step's calls (``fresh``) by what they spent and
    how they ended: skipped for budget, answered by the fallback, failed, breaker opened."""
    by_source = {r["source"]: r["count"] for r in results.groupBy("source").count().collect()}
    status, error = F.col("enrichment_status"), F.col("error")
    spend = fresh.agg(
        F.sum(F.col("tokens_in") + F.col("tokens_out")),
        F.sum((status == STATUS_SKIPPED).cast("int")),
        F.sum(((status == STATUS_OK) & error.isNotNull()).cast("int")),
        F.sum((status == STATUS_FAILED).cast("int")),
        F.first(F.when(error.contains(CIRCUIT_OPEN), error), ignorenulls=True),
    ).first()
    return Tally(
        by_source=by_source,
        spent=int(spend[0] or 0),
        skipped=int(spend[1] or 0),
        fallback_rows=int(spend[2] or 0),
        failed_rows=int(spend[3] or 0),
        circuit=breaker_reason(spend[4]),
    )


def run_enrichment(
    resource: "EnrichmentResource",
    lakehouse: LakehouseResource,
    rows: DataFrame,
    text: Column,
    task: TaskSpec,
    business_date: date | Sequence[date],
    run_id: str,
    names: Sequence[str] | Mapping[date, Sequence[str]] = (),
) -> EnrichmentRun:
    """``EnrichmentResource.enrich``: the stages above, and the run's spend and breakers kept on
    ``resource``."""
    spark = rows.sparkSession
    days = [business_date] if isinstance(business_date, date) else sorted(set(business_date))
    if not days:
        raise ValueError(f"{task.name}: no business date to enrich")
    when = str(days[0]) if len(days) == 1 else f"{days[0]}..{days[-1]}"
    journal = resource.journal_dir(lakehouse, task)
    if journal is not None:
        # Answers a killed run paid for become cache hits before anything is sent.
        merge_journal(lakehouse, spark, journal, task, days[0])
    config = resource.call_config(task, run_id)
    inputs = prepare_inputs(rows, text, task, config, days, names)
    hits, misses = split_by_cache(lakehouse, spark, inputs.distinct)
    budget_left = resource.budget_left
    budgeted = budget_misses(
        resource, misses, task, config, run_id, journal, when, ranged=len(days) > 1
    )
    fresh = call_and_log(lakehouse, budgeted, task, days, run_id, journal)
    results = fresh if hits is None else fresh.unionByName(hits)
    counted = tally(fresh, results)
    if counted.circuit and budgeted.config.kind != EMBEDDED:
        # Later calls of this run send nothing for the task (for any task: a refused key).
        resource.record_open_circuit(
            "*" if AUTH_OPENED in counted.circuit else task.name, counted.circuit
        )
    resource.record_spend(counted.spent)
    if counted.skipped and budgeted.config.kind != EMBEDDED and resource.budget_policy == "fail":
        raise TokenBudgetExceededError(
            f"{task.name} {when}: the run's token budget "
            f"(LLM_RUN_TOKEN_BUDGET={resource.run_token_budget:,}) ran out; "
            f"{counted.skipped:,} inputs were skipped (what was spent is recorded in "
            f"{LLM_CALLS.qualified})"
        )
    return EnrichmentRun(
        rows=inputs.rows.join(results, INPUT_HASH, "left").drop(ENRICH_TEXT),
        provider=resource.describe(),
        model=budgeted.config.model_id,
        distinct_inputs=sum(counted.by_source.values()),
        cache_hits=counted.by_source.get("cache", 0),
        computed=sum(v for k, v in counted.by_source.items() if k != "cache"),
        estimated_input_tokens=budgeted.estimated_tokens,
        estimated_requests=budgeted.estimated_requests,
        tokens_spent=counted.spent,
        skipped_for_budget=counted.skipped,
        budget_left=budget_left,
        over_budget_estimate=budgeted.estimated_tokens > budget_left,
        fallback_rows=counted.fallback_rows,
        failed_rows=counted.failed_rows,
        circuit_open=counted.circuit,
    )
