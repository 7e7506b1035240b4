"""The enrichment resource: provider choice and configuration, and what a run has spent.

With ``OPENAI_API_KEY`` set, records go to the OpenAI-compatible endpoint; without it the embedded
offline model answers, and every row and the run's metadata say so. What one enrichment does with
the lakehouse (the cache lookup, the budget, the calls and their log) is the engine's:
``infra/enrichment_engine.py``.
"""

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date

from dagster import ConfigurableResource, EnvVar, MetadataValue
from pydantic import PrivateAttr
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from enrichment.breaker import request_bound
from enrichment.group_summary import group_cache_params
from enrichment.models import (
    SOURCE_CACHE,
    SOURCE_LLM,
    STATUS_OK,
    TaskSpec,
)
from enrichment.providers import ProviderConfig
from enrichment.providers.base import EMBEDDED, OPENAI, OPENAI_BATCH
from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from infra.enrichment_engine import (
    CALL_DATE,
    GROUP_SUMMARY_CACHE,
    LLM_CACHE,
    LLM_CALLS,
    EnrichmentRun,
    TokenBudgetExceededError,
    insert_absent_keys,
    log_calls,
    merge_journal,
    run_enrichment,
)
from infra.history_models import effect_metadata, history_stats, load_or_train, model_key
from infra.lakehouse import LakehouseResource
from infra.settings import llm_settings
from transforms.document_fields import document_input_hashes, extract_fields
from transforms.enrich import (
    ENRICH_TEXT,
    INJECTION_SUSPECTED,
    INPUT_HASH,
    OUTCOME_TYPES,
    fallback_dates,
    model_outcomes,
    with_enrichment_input,
)
from transforms.group_summary import (
    GROUP_KEY,
    as_group_cache_hits,
    summarize_each_key_once,
    with_group_key,
)
from transforms.human_labels import LABEL_SOURCE, LABEL_WEIGHT
from transforms.mllib_classifier import (
    NEEDS_LLM,
    PREDICTED_LABEL,
    ClassifierParams,
    predict_labels,
    route_by_confidence,
)
from transforms.training_window import TrainingWindow

# The run's budget and breakers, counted by steps that may run at once (infra/executor.py).
_STATE_LOCK = threading.Lock()

# The engine's names its callers import from here too.
__all__ = [
    "CALL_DATE",
    "GROUP_SUMMARY_CACHE",
    "LLM_CACHE",
    "LLM_CALLS",
    "EnrichmentResource",
    "EnrichmentRun",
    "TokenBudgetExceededError",
    "merge_journal",
]


class EnrichmentResource(ConfigurableResource):
    """Chooses the provider from configuration and runs tasks through the cache."""

    api_key: str | None = None
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    max_records_per_request: int = 20
    max_input_tokens_per_request: int = 6000
    max_attempts_per_record: int = 3
    request_timeout_s: float = 60.0
    # Tokens (in + out) one Dagster run may spend across all its enrichment steps; when the
    # pre-run estimate or the spend exceeds it: "warn" (send what fits, mark the rest skipped,
    # publish with a warning) or "fail" (send nothing when the estimate does not fit; fail the
    # step after recording what was spent when records had to be skipped).
    run_token_budget: int = 2_000_000
    budget_policy: str = "warn"
    # "chat" (synchronous) or "batch" (the Batch API: slower, half the price)
    route: str = "chat"
    # Provider limits for the whole run; each of max_concurrency Spark tasks gets its share.
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_concurrency: int = 4

    # Where labelled history exists (enrich_with_history): a Spark ML model answers, and rows it
    # is less sure of than this go to the LLM (when one is configured).
    route_below_confidence: float = 0.7
    history_min_rows: int = 200
    # Consecutive failed requests after which a task stops calling the endpoint for the rest of
    # the run (0: never); a 401/403 stops every task at once (enrichment/breaker.py).
    breaker_failures: int = 5
    # Comma-separated tasks (or "all") whose rows the LLM did not answer are left failed
    # instead of answered by the offline model.
    fallback_off: str = ""
    # Waits before a retry when the provider gives no Retry-After: doubling from the base, capped.
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0

    _tokens_spent: int = PrivateAttr(default=0)
    # Breakers an enrichment call of this run saw open, by task ("*": the key was refused).
    _open_circuits: dict[str, str] = PrivateAttr(default_factory=dict)
    # History models this run trained or loaded, by (lakehouse, registry key).
    _history_models: dict = PrivateAttr(default_factory=dict)

    @classmethod
    def from_env(cls) -> "EnrichmentResource":
        """Configuration from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and ``LLM_*`` variables."""
        settings = llm_settings()
        return cls(
            api_key=EnvVar("OPENAI_API_KEY") if settings.api_key_set else None,
            base_url=settings.base_url,
            model=settings.model,
            route=settings.route,
            max_records_per_request=settings.max_records_per_request,
            max_input_tokens_per_request=settings.max_input_tokens_per_request,
            run_token_budget=settings.run_token_budget,
            budget_policy=settings.budget_policy,
            requests_per_minute=settings.requests_per_minute,
            tokens_per_minute=settings.tokens_per_minute,
            max_concurrency=settings.max_concurrency,
            route_below_confidence=settings.route_below_confidence,
            history_min_rows=settings.history_min_rows,
            breaker_failures=settings.breaker_failures,
            fallback_off=",".join(settings.fallback_off),
            backoff_base_s=settings.backoff_base_s,
            backoff_max_s=settings.backoff_max_s,
        )

    @property
    def provider_kind(self) -> str:
        """``openai`` (or ``openai_batch``) when a key is configured, else ``embedded``."""
        if not self.api_key:
            return EMBEDDED
        if self.route not in ("chat", "batch"):
            raise ValueError(f"LLM_ROUTE must be chat or batch, not {self.route!r}")
        return OPENAI_BATCH if self.route == "batch" else OPENAI

    def record_spend(self, tokens: int) -> None:
        """Count tokens spent (by an enrichment, an extraction, a group summary) against the
        run's budget."""
        with _STATE_LOCK:  # steps may run at once in threads (infra/executor.py)
            self._tokens_spent += tokens

    def record_open_circuit(self, scope: str, reason: str) -> None:
        """A breaker opened: later calls of the run send nothing for the task ``scope`` (``*``:
        for any task, the key was refused)."""
        with _STATE_LOCK:
            self._open_circuits[scope] = reason

    @property
    def budget_left(self) -> int:
        """Tokens this run may still spend."""
        return max(0, self.run_token_budget - self._tokens_spent)

    def provider_config(self, tasks: int | None = None) -> ProviderConfig:
        """The picklable configuration shipped to Spark executors.

        The run's budget left and its rate limits are split evenly between the ``tasks`` Spark
        tasks that will call the provider (``max_concurrency`` unless given).
        """
        tasks = 1 if self.provider_kind == EMBEDDED else max(1, tasks or self.max_concurrency)
        return ProviderConfig(
            kind=self.provider_kind,
            model=self.model,
            base_url=self.base_url,
            api_key=self.api_key,
            max_records_per_request=self.max_records_per_request,
            max_input_tokens_per_request=self.max_input_tokens_per_request,
            max_attempts_per_record=self.max_attempts_per_record,
            request_timeout_s=self.request_timeout_s,
            # Budgets and limits are per run; each of max_concurrency tasks gets its share.
            token_budget=self.budget_left // tasks,
            requests_per_minute=None
            if self.requests_per_minute is None
            else self.requests_per_minute / tasks,
            tokens_per_minute=None
            if self.tokens_per_minute is None
            else self.tokens_per_minute / tasks,
            breaker_failures=self.breaker_failures,
            fallback_off=tuple(n.strip() for n in self.fallback_off.split(",") if n.strip()),
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
        )

    def call_config(self, task: TaskSpec, scope: str, tasks: int | None = None) -> ProviderConfig:
        """``provider_config`` for one call of ``task``: breakers shared within ``scope`` (the
        run), and already open when an earlier call of the run found the endpoint broken."""
        opened = self._open_circuits.get("*") or self._open_circuits.get(task.name)
        return replace(self.provider_config(tasks), breaker_scope=scope, circuit_open=opened)

    def fell_back(self, staged: DataFrame) -> set[date]:
        """Dates of ``staged`` with rows the offline fallback answered for the LLM (none offline:
        the embedded provider is the answer, not a fallback). Recorded for recompute by
        ``infra/versions.record_audited``, so a healthy endpoint answers them next run."""
        return set() if self.provider_kind == EMBEDDED else fallback_dates(staged)

    def fallback_for(self, task: TaskSpec) -> bool:
        """Whether ``task``'s rows the LLM did not answer get an offline answer."""
        return self.provider_config().falls_back(task.name)

    def version_config(self) -> str:
        """What of the configuration shapes enriched values (never the key): part of a step's
        input version, so a changed model, endpoint or routing recomputes its dates."""
        return "|".join(
            str(v)
            for v in (
                f"{type(self).__module__}.{type(self).__qualname__}",
                self.provider_kind,
                self.model,
                self.base_url,
                self.max_records_per_request,
                self.max_input_tokens_per_request,
                self.route_below_confidence,
                self.history_min_rows,
                self.fallback_off,
            )
        )

    def describe(self) -> str:
        """One line for logs and metadata; never includes the key."""
        config = self.provider_config()
        if config.kind == EMBEDDED:
            return f"embedded offline model {config.model_id} (no OPENAI_API_KEY set: no LLM used)"
        route = "Batch API" if config.kind == OPENAI_BATCH else "chat completions"
        return f"LLM {config.model} ({route}) at {config.base_url or 'https://api.openai.com/v1'}"

    def journal_dir(self, lakehouse: LakehouseResource, task: TaskSpec) -> str | None:
        """Where the chat route journals ``task``'s answers (``enrichment/journal.py``): a local
        lakehouse's ``_journal/llm/<task>``; None offline, on the Batch API route (a batch is
        answered whole) or on an object store."""
        folder = lakehouse.local_folder()
        if folder is None or self.provider_kind != OPENAI:
            return None
        return str(folder / "_journal" / "llm" / task.name)

    def enrich(
        self,
        lakehouse: LakehouseResource,
        rows: DataFrame,
        text: Column,
        task: TaskSpec,
        business_date: date | Sequence[date],
        run_id: str,
        names: Sequence[str] | Mapping[date, Sequence[str]] = (),
    ) -> EnrichmentRun:
        """Enrich ``rows``: identical inputs once, cached inputs never again.

        The provider is called once per distinct uncached input; its outcomes are appended to
        ``ops.llm_calls`` in one Spark job (so nothing is recomputed or paid twice), and the
        successful ones merged into ``ops.llm_cache``. Personal data (``names`` from the roster,
        e-mails, phones, ids, account numbers, salaries) is redacted before hashing or sending.
        Returns ``rows`` with provenance columns and ``redactions``. The stages are
        ``infra/enrichment_engine.py``'s; this resource keeps the run's spend and breakers.

        ``business_date`` may be a run's dates: ``rows`` then carries ``business_date`` and
        ``names`` is each date's roster (a mapping), so every row is redacted as its own date
        would be alone; an input seen on several dates is called once, logged under the first.
        """
        return run_enrichment(self, lakehouse, rows, text, task, business_date, run_id, names)

    def enrich_with_history(
        self,
        lakehouse: LakehouseResource,
        rows: DataFrame,
        text: Column,
        task: TaskSpec,
        business_date: date | Sequence[date],
        run_id: str,
        history: DataFrame,
        label_col: str,
        names: Sequence[str] | Mapping[date, Sequence[str]] = (),
        *,
        window: TrainingWindow,
        history_names: Sequence[str] | None = None,
        coded_label_col: str | None = None,
    ) -> EnrichmentRun:
        """Like ``enrich``, but a model trained on labelled ``history`` answers first.

        The model is the one of ``window`` (``transforms/training_window.py``: the week of
        ``business_date`` and the dates before it that it learns from): only the rows of
        ``history`` whose ``business_date`` falls in the window, and whose ``label_col`` is in the
        taxonomy, train it. With at least ``history_min_rows`` of them (two labels or more), a
        Spark ML classifier (``transforms/mllib_classifier.py``) trained on their text, redacted
        with ``history_names`` (``names`` when not given), labels today's rows with a calibrated
        confidence. It is trained once per window and history content and registered in
        ``ops.history_models`` (``infra/history_models.py``): the other dates of the week load it.
        With an LLM configured, rows below ``route_below_confidence`` go to it; without one, the
        model answers every row it has text for. Model answers say so (``source`` = model,
        ``model`` names the training window); with too little history, everything goes through
        ``enrich``.

        ``business_date`` may be several dates of the window's week (``rows`` then carries
        ``business_date`` and ``names`` is each date's roster, as in ``enrich``): the week's
        model scores them together, once.

        A ``history`` with reviewers' labels (``transforms/human_labels.py``: ``label_col`` is
        then ``history_label``, the employees' own label ``coded_label_col``) trains with each
        row weighted by its ``label_weight``, and the run reports how those labels changed the
        model's accuracy on its held-back rows (``history_model_learning``).
        """
        if task.taxonomy is None:
            raise ValueError(f"{task.name} does not classify: there is nothing to learn")
        days = [business_date] if isinstance(business_date, date) else list(business_date)
        outside = [day for day in days if not window.serves(day)]
        if outside:
            raise ValueError(f"{outside[0]} is not in the week of the window {window}")
        config = self.provider_config()
        labelled = history.where(
            F.col("business_date").between(F.lit(window.first), F.lit(window.last))
            & F.col(label_col).isin(task.taxonomy.names)
        )
        stats = history_stats(labelled, text, label_col)
        if stats.rows < self.history_min_rows or stats.labels < 2:
            return self.enrich(lakehouse, rows, text, task, business_date, run_id, names)
        if history_names is None:
            history_names = (
                sorted({n for day_names in names.values() for n in day_names})
                if isinstance(names, Mapping)
                else names
            )
        params = ClassifierParams()
        key = model_key(task.name, window, stats, history_names, params)
        model = self._history_models.get((lakehouse.base, key))
        trained_now = False
        if model is None:
            learning = (
                [LABEL_WEIGHT, LABEL_SOURCE, coded_label_col]
                if LABEL_WEIGHT in labelled.columns and coded_label_col
                else []
            )
            prepared = labelled.transform(
                with_enrichment_input(text, task, config, history_names)
            ).select(ENRICH_TEXT, label_col, *learning)
            model = load_or_train(
                lakehouse,
                prepared,
                ENRICH_TEXT,
                label_col,
                task=task.name,
                window=window,
                stats=stats,
                key=key,
                run_id=run_id,
                params=params,
                coded_label_col=coded_label_col,
                coded_labels=task.taxonomy.names,
            )
            self._history_models[(lakehouse.base, key)] = model
            trained_now = model.trained_now
        threshold = 0.0 if config.kind == EMBEDDED else self.route_below_confidence
        prepare = with_enrichment_input(text, task, config, names)
        # Checkpointed: today's rows are redacted and scored once, though both branches and the
        # staging write downstream read them.
        scored = (
            predict_labels(model.classifier, rows.transform(prepare), ENRICH_TEXT)
            .transform(route_by_confidence(threshold))
            .localCheckpoint()
        )
        doubtful = scored.where(F.col(NEEDS_LLM)).select(*rows.columns)
        local = (
            scored.where(~F.col(NEEDS_LLM))
            .transform(model_outcomes(model.model_id, task))
            .drop(ENRICH_TEXT, NEEDS_LLM, PREDICTED_LABEL)
        )
        run = self.enrich(lakehouse, doubtful, text, task, business_date, run_id, names)
        if run.fallback_rows:
            # The LLM did not answer some doubtful rows: the history model, which scored them
            # already, is the first fallback (its label, confidence and name; error keeps why
            # the LLM did not). The embedded answer stays where the model had no label.
            run.rows = run.rows.transform(
                history_model_first(
                    scored.where(F.col(NEEDS_LLM)).transform(model_outcomes(model.model_id, task))
                )
            )
        model_labelled = local.count()
        run.rows = run.rows.unionByName(local)
        run.history_model = model.model_id
        run.history_model_trained = trained_now
        run.history_model_learning = effect_metadata(model)
        run.model_labelled = model_labelled
        run.routed_to_provider = run.distinct_inputs
        return run

    def extract_documents(
        self,
        lakehouse: LakehouseResource,
        documents: DataFrame,
        task: TaskSpec,
        run_id: str,
        names: Mapping[date, Sequence[str]],
    ) -> DataFrame:
        """Run an extract ``task`` over ``documents`` (``business_date``, ``file_name``,
        ``pages_json``) in Spark tasks: one row per document, computed once.

        With an LLM, each document's cache key is computed first (redacted text, in tasks) and
        looked up in ``ops.llm_cache``; a hit is answered from it (``source = cache``), the rest
        go to the provider (packed, limited, retried, answered by the rules where it fails) and
        its successful answers are merged into the cache. Offline the rules answer everything
        and nothing is cached. The result is checkpointed, so writing and counting it never
        calls the provider again.
        """
        spark = documents.sparkSession
        if self.provider_kind == EMBEDDED:
            tasks = spark.sparkContext.defaultParallelism
            config = self.call_config(task, run_id)
        else:
            tasks = self.max_concurrency
            config = self.call_config(task, run_id, tasks)
        cached = F.lit(None).cast("string").alias("cached")
        inputs = documents.withColumn("input_hash", F.lit(None).cast("string")).select("*", cached)
        if config.kind != EMBEDDED and lakehouse.exists(spark, LLM_CACHE):
            version = lakehouse.version(spark, LLM_CACHE)
            table = lakehouse.read(spark, LLM_CACHE, version)
            if "extraction" in table.columns:
                entries = table.where(
                    (F.col("task") == task.name)
                    & (F.col("enrichment_status") == STATUS_OK)
                    & F.col("extraction").isNotNull()
                ).select(
                    "input_hash",
                    F.to_json(F.struct("model", "confidence", "extraction")).alias("cached"),
                )
                keys = documents.transform(document_input_hashes(task, config, names))
                inputs = documents.join(keys, ["business_date", "file_name"]).join(
                    entries.dropDuplicates(["input_hash"]), "input_hash", "left"
                )
        extracted = (
            inputs.repartition(max(1, tasks), "file_name")
            .transform(extract_fields(task, config, names))
            .localCheckpoint()
        )
        # What the provider (or the offline rules) answered is logged like every enrichment call:
        # its tokens, cost, attempts and provenance per document; a cache hit cost nothing.
        columns = [
            F.col(c) if c in extracted.columns else F.lit(None).cast(t).alias(c)
            for c, t in OUTCOME_TYPES.items()
        ]
        log_calls(
            lakehouse,
            extracted.where(F.col("source") != F.lit(SOURCE_CACHE)).select(
                F.lit(run_id).alias("run_id"),
                "business_date",
                F.lit(task.name).alias("task"),
                F.current_timestamp().alias("called_at"),
                *columns,
            ),
        )
        if config.kind != EMBEDDED:
            answered = extracted.where(
                (F.col("enrichment_status") == STATUS_OK)
                & (F.col("source") == SOURCE_LLM)
                & (F.col("model") == config.model_id)
                & F.col("extraction").isNotNull()
            )
            spent = extracted.agg(F.sum(F.col("tokens_in") + F.col("tokens_out"))).first()[0]
            self.record_spend(int(spent or 0))
            if not answered.isEmpty():
                columns = [
                    F.col(c) if c in answered.columns else F.lit(None).cast(t).alias(c)
                    for c, t in OUTCOME_TYPES.items()
                ]
                insert_absent_keys(
                    lakehouse,
                    LLM_CACHE,
                    answered.select(
                        *columns,
                        "extraction",
                        F.lit(task.name).alias("task"),
                        F.current_timestamp().alias("cached_at"),
                    ),
                )
        return extracted

    def summarize_groups(
        self,
        lakehouse: LakehouseResource,
        lines: DataFrame,
        task: TaskSpec,
        *,
        group_cols: Sequence[str],
        text_col: str,
        order_col: str,
        label_col: str | None = None,
    ) -> DataFrame:
        """One summary per group of ``lines`` (``enrichment/group_summary.py``), through a cache.

        A group is keyed by its content (``transforms/group_summary.py``): a key an earlier run
        summarized is served from ``ops.group_summary_cache`` (``source`` = cache, nothing
        spent), and every other key is summarized once, in one Spark job that is checkpointed
        before anything reads it, so later actions (the write, counts, audits) never call the
        provider again. Successful LLM summaries are then cached; failures are not, so the next
        run retries them. Returns ``group_cols``, ``input_hash`` and ``GROUP_SUMMARY_COLUMNS``.
        """
        spark = lines.sparkSession
        # One scope per call: the groups a Python worker summarizes share the task's breaker.
        config = self.call_config(task, f"groups-{uuid.uuid4().hex}")
        params = group_cache_params(
            task, config.model_id, max_input_tokens=config.max_input_tokens_per_request
        )
        keys = lines.transform(with_group_key(group_cols, text_col, order_col, params))
        keys = keys.localCheckpoint()
        misses, hits = keys, None
        if config.kind != EMBEDDED and lakehouse.exists(spark, GROUP_SUMMARY_CACHE):
            # As of one version: the merge below must not turn this run's answers into hits.
            version = lakehouse.version(spark, GROUP_SUMMARY_CACHE)
            cached = lakehouse.read(spark, GROUP_SUMMARY_CACHE, version).join(
                keys.select(GROUP_KEY).distinct(), GROUP_KEY, "left_semi"
            )
            hits = as_group_cache_hits(cached)
            misses = keys.join(cached.select(GROUP_KEY), GROUP_KEY, "left_anti")
        fresh = summarize_each_key_once(
            lines,
            misses,
            config,
            task,
            group_cols=group_cols,
            text_col=text_col,
            order_col=order_col,
            label_col=label_col or group_cols[-1],
        ).localCheckpoint()
        answered = fresh.where((F.col("status") == STATUS_OK) & (F.col("source") == SOURCE_LLM))
        if config.kind != EMBEDDED and not answered.isEmpty():
            ok = answered.withColumn("task", F.lit(task.name)).withColumn(
                "cached_at", F.current_timestamp()
            )
            insert_absent_keys(lakehouse, GROUP_SUMMARY_CACHE, ok)
        return keys.join(fresh if hits is None else fresh.unionByName(hits), GROUP_KEY)


def enrichment_rollup(staged: DataFrame, prefix: str = "") -> dict:
    """Rows by status and source, tokens, cost and latency percentiles of staged rows.

    ``prefix`` selects a second outcome's provenance columns (``urgency_`` on HR cases) and
    prefixes the metadata keys with it.
    """
    status, source = prefix + "enrichment_status", prefix + "source"
    injection = not prefix and INJECTION_SUSPECTED in staged.columns
    # One job: the cube's grouping sets are the counts by status (grouping id 1), by source (2)
    # and the whole (3), whose sums and percentiles are the run's.
    rows = (
        staged.cube(status, source)
        .agg(
            F.grouping_id().alias("_set"),
            F.count(F.lit(1)).alias("rows"),
            F.sum(prefix + "tokens_in").alias("tokens_in"),
            F.sum(prefix + "tokens_out").alias("tokens_out"),
            F.sum(prefix + "cost_usd").alias("cost_usd"),
            F.percentile_approx(prefix + "latency_ms", [0.5, 0.95]).alias("latency"),
            F.count_if(F.col(INJECTION_SUSPECTED) if injection else F.lit(False)).alias("inj"),
        )
        .collect()
    )
    statuses = {r[status]: r["rows"] for r in rows if r["_set"] == 1}
    sources = {r[source]: r["rows"] for r in rows if r["_set"] == 2}
    row = next((r for r in rows if r["_set"] == 3), None)
    latency = (row["latency"] if row else None) or [0.0, 0.0]
    figures = {
        "rows_by_status": MetadataValue.json(statuses),
        "rows_by_source": MetadataValue.json(sources),
        "llm_tokens_in": int((row and row["tokens_in"]) or 0),
        "llm_tokens_out": int((row and row["tokens_out"]) or 0),
        "llm_cost_usd": float((row and row["cost_usd"]) or 0.0),
        "latency_ms_p50": float(latency[0] or 0.0),
        "latency_ms_p95": float(latency[1] or 0.0),
    }
    if injection:
        figures["injection_suspected_rows"] = int((row and row["inj"]) or 0)
    return {prefix + key: value for key, value in figures.items()}


# What the history model replaces in a row the offline fallback answered.
_MODEL_ANSWER = ("label", "labels", "confidence", "source", "model", "rationale", "summary")


def history_model_first(model_answers: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Rows the offline fallback answered (the LLM did not) take the history model's answer
    instead, where it has a label for their input; ``error`` keeps why the LLM did not answer.

    ``model_answers``: the history model's outcomes (``transforms/enrich.model_outcomes``) for
    the rows that were sent to the LLM, keyed by ``input_hash`` (one answer per input: the model
    reads the text alone).
    """
    answers = (
        model_answers.where(F.col("enrichment_status") == STATUS_OK)
        .select(INPUT_HASH, *[F.col(c).alias(f"_hm_{c}") for c in _MODEL_ANSWER])
        .dropDuplicates([INPUT_HASH])
    )

    def transform(rows: DataFrame) -> DataFrame:
        is_fallback = (F.col("enrichment_status") == STATUS_OK) & F.coalesce(
            F.col("error").startswith(FALLBACK_ERROR_PREFIX), F.lit(False)
        )
        joined = rows.join(answers, INPUT_HASH, "left")
        take = is_fallback & F.col("_hm_label").isNotNull()
        return joined.withColumns(
            {c: F.when(take, F.col(f"_hm_{c}")).otherwise(F.col(c)) for c in _MODEL_ANSWER}
        ).select(*rows.columns)

    return transform


def llm_unavailable(fallback_rows: int) -> str:
    """What the summary and metadata say when the LLM did not answer some rows."""
    return f"LLM unavailable: {fallback_rows} rows answered by the fallback model"


def budget_metadata(runs: Sequence[EnrichmentRun], resource: EnrichmentResource) -> dict:
    """The pre-run estimate and the spend of a step's enrichment calls, for its metadata.

    With the availability of the LLM: rows answered by the fallback, rows left failed, the
    circuit breaker's state and the most requests a broken endpoint can cost a task of the run
    (``breaker_failures`` per Python worker calling it, at most ``max_concurrency`` of them).
    """
    fallback = sum(r.fallback_rows for r in runs)
    opened = sorted({r.circuit_open for r in runs if r.circuit_open})
    availability = {
        "llm_fallback_rows": fallback,
        "llm_failed_rows": sum(r.failed_rows for r in runs),
        "llm_circuit_breaker": "; ".join(opened) or "closed",
        "llm_failed_requests_bound_per_task": request_bound(
            resource.breaker_failures, resource.max_concurrency
        ),
    }
    if fallback:
        availability["llm_unavailable"] = llm_unavailable(fallback)
    return {
        **availability,
        "estimated_llm_input_tokens": sum(r.estimated_input_tokens for r in runs),
        "estimated_llm_requests": sum(r.estimated_requests for r in runs),
        "llm_tokens_spent": sum(r.tokens_spent for r in runs),
        "skipped_for_budget": sum(r.skipped_for_budget for r in runs),
        "run_token_budget": resource.run_token_budget,
        "run_token_budget_left": resource.budget_left,
        "budget_policy": resource.budget_policy,
    }


def over_budget_warnings(runs: Sequence[EnrichmentRun]) -> list[str]:
    """One line per call whose estimate exceeded what the run had left (policy ``warn``)."""
    return [
        f"estimated {r.estimated_input_tokens:,} input tokens but only {r.budget_left:,} left in "
        f"the run's budget: records that do not fit are marked skipped"
        for r in runs
        if r.over_budget_estimate
    ]
