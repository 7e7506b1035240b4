"""Enrichment on Spark: hash inputs, call a provider in Arrow batches, shape the provenance.

The provider runs inside ``mapInPandas`` (Arrow batches, never a row-at-a-time UDF) and is built
once per partition from a picklable ``ProviderConfig``.
"""

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from functools import lru_cache

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from enrichment.cache import KEY_SEPARATOR, cache_params
from enrichment.injection import INJECTION_REGEX
from enrichment.models import (
    SOURCE_MODEL,
    SOURCE_RULE,
    STATUS_OK,
    STATUS_REDACTED,
    RecordIn,
    RecordOut,
    TaskSpec,
)
from enrichment.packing import estimate_input_tokens
from enrichment.providers import ProviderConfig, build_provider
from enrichment.providers.embedded import EXTRACTIVE_SUMMARY_ID, extractive_summary
from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from enrichment.redaction import Redaction, Redactor

REDACTION_MODEL_ID = "redaction-v1"

INPUT_HASH = "input_hash"
ENRICH_TEXT = "_enrich_text"
INJECTION_SUSPECTED = "injection_suspected"

OUTCOME_SCHEMA = (
    "input_hash string, enrichment_status string, label string, confidence double, "
    "summary string, source string, model string, prompt_version string, tokens_in int, "
    "tokens_out int, cost_usd double, attempts int, error string, latency_ms double, "
    "labels array<string>, rationale string"
)
# What every enriched gold row says of how its value was produced (``failure_kind`` added by
# ``with_failure_kind``).
PROVENANCE_COLUMNS = [
    "enrichment_status",
    "failure_kind",
    "source",
    "model",
    "prompt_version",
    "input_hash",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "attempts",
    "error",
    "latency_ms",
]

OUTCOME_TYPES = dict(c.strip().split(" ", 1) for c in OUTCOME_SCHEMA.split(", "))
OUTCOME_COLUMNS = list(OUTCOME_TYPES)


@lru_cache(maxsize=4)
def _redactor(names: tuple[str, ...], kinds: tuple[str, ...] | None = None) -> Redactor:
    return Redactor(names, kinds)


def with_redacted_text(
    text: Column,
    names: Sequence[str] | Mapping[date, Sequence[str]] = (),
    kinds: Sequence[str] | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """Add ``_enrich_text`` (personal data replaced by placeholders) and ``redactions``.

    ``redactions`` is a JSON object of counts by kind (``{"EMAIL": 1, "PERSON": 2}``), null when
    nothing was redacted. Runs in Arrow batches. ``names`` may be given per business date (a
    run's dates, each with its own roster): each row is then redacted with its date's names.
    ``kinds``: the patterns to apply (``Redactor``; all when None), roster names always.
    """
    kinds = None if kinds is None else tuple(kinds)
    if isinstance(names, Mapping):
        by_date = {d: tuple(sorted(set(n))) for d, n in names.items()}
    else:
        by_date = {None: tuple(sorted(set(names)))}

    @F.pandas_udf("text string, redactions string")
    def redact(texts: pd.Series, days: pd.Series) -> pd.DataFrame:
        done = []
        for t, d in zip(texts, days, strict=True):
            key = None if None in by_date else (d.date() if hasattr(d, "date") else d)
            if key not in by_date:
                # Never redact less than the date's roster asks for: no names, no call.
                raise KeyError(f"no roster names were given for business date {key}")
            redactor = _redactor(by_date[key], kinds)
            done.append(redactor.redact(t) if isinstance(t, str) else Redaction(""))
        return pd.DataFrame(
            {
                "text": [r.text for r in done],
                "redactions": [
                    json.dumps(r.counts, sort_keys=True) if r.counts else None for r in done
                ],
            }
        )

    def transform(df: DataFrame) -> DataFrame:
        day = F.col("business_date") if None not in by_date else F.lit(None).cast("date")
        return (
            df.withColumn("_redaction", redact(text, day))
            .withColumn(ENRICH_TEXT, F.col("_redaction.text"))
            .withColumn("redactions", F.col("_redaction.redactions"))
            .drop("_redaction")
        )

    return transform


def with_enrichment_input(
    text: Column, task: TaskSpec, config: ProviderConfig, names: Sequence[str] = ()
) -> Callable[[DataFrame], DataFrame]:
    """Add the text sent for enrichment (redacted if the task says so), its ``input_hash``, and
    ``injection_suspected``: the text looks like it addresses the model (``enrichment/injection``).

    ``input_hash = sha256(task, prompt version, model, parameters, redacted text)``: a prompt or
    model change gives every affected row a new key, and nothing else changes.
    """
    params = cache_params(task, config)

    def transform(df: DataFrame) -> DataFrame:
        if task.redact:
            df = df.transform(with_redacted_text(text, names))
        else:
            df = df.withColumn(ENRICH_TEXT, text).withColumn(
                "redactions", F.lit(None).cast("string")
            )
        return df.withColumn(
            INPUT_HASH, F.sha2(F.concat(F.lit(params + KEY_SEPARATOR), F.col(ENRICH_TEXT)), 256)
        ).withColumn(
            INJECTION_SUSPECTED,
            F.coalesce(F.col(ENRICH_TEXT).rlike(INJECTION_REGEX), F.lit(False)),
        )

    return transform


def _enrich_batches(
    task: TaskSpec, config: ProviderConfig
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # What the LLM leaves failed, the offline model answers (marked; see providers/fallback).
        provider = build_provider(config, fallback=True)
        for batch in batches:
            records = [
                RecordIn(id=h, text=t)
                for h, t in zip(batch[INPUT_HASH], batch[ENRICH_TEXT], strict=True)
            ]
            suspected = {
                h
                for h, flag in zip(batch[INPUT_HASH], batch[INJECTION_SUSPECTED], strict=True)
                if flag
            }
            # A record that is mostly personal data is not worth sending, even redacted.
            withheld = [r for r in records if task.redact and not Redaction(r.text).has_content]
            withheld_ids = {r.id for r in withheld}
            to_send = [r for r in records if r.id not in withheld_ids | suspected]
            outcomes = provider.run(task, to_send) if to_send else []
            # Text that addresses the model travels alone: it cannot reach another record.
            for record in records:
                if record.id in suspected and record.id not in withheld_ids:
                    outcomes += provider.run(task, [record])
            outcomes += [
                RecordOut(
                    id=r.id,
                    status=STATUS_REDACTED,
                    source=SOURCE_RULE,
                    model=REDACTION_MODEL_ID,
                    error="withheld: too little left after redacting personal data",
                )
                for r in withheld
            ]
            yield pd.DataFrame(
                {
                    "input_hash": [o.id for o in outcomes],
                    "enrichment_status": [o.status for o in outcomes],
                    "label": [o.label for o in outcomes],
                    "confidence": [o.confidence for o in outcomes],
                    "summary": [o.summary for o in outcomes],
                    "source": [o.source for o in outcomes],
                    "model": [o.model for o in outcomes],
                    "prompt_version": [task.prompt_version] * len(outcomes),
                    "tokens_in": [o.tokens_in for o in outcomes],
                    "tokens_out": [o.tokens_out for o in outcomes],
                    "cost_usd": [float(o.cost_usd) for o in outcomes],
                    "attempts": [o.attempts for o in outcomes],
                    "error": [o.error for o in outcomes],
                    "latency_ms": [float(o.latency_ms) for o in outcomes],
                    "labels": [o.labels for o in outcomes],
                    "rationale": [o.rationale for o in outcomes],
                }
            )

    return run


def call_provider(task: TaskSpec, config: ProviderConfig) -> Callable[[DataFrame], DataFrame]:
    """Distinct ``(input_hash, _enrich_text)`` rows in, one outcome row per hash out."""

    def transform(inputs: DataFrame) -> DataFrame:
        return inputs.select(INPUT_HASH, ENRICH_TEXT, INJECTION_SUSPECTED).mapInPandas(
            _enrich_batches(task, config), OUTCOME_SCHEMA
        )

    return transform


def model_outcomes(
    model_id: str, task: TaskSpec, label: str = "predicted_label", confidence: str = "confidence"
) -> Callable[[DataFrame], DataFrame]:
    """Rows a local model labelled, as enrichment outcomes (``source`` = model, no tokens spent).

    The summary, when the task wants one, is the embedded extractive summary of the text that
    would have been sent (``_enrich_text``); ``model`` names both. ``prompt_version`` is null: no
    prompt produced these answers.
    """
    words = task.summary_max_words

    @F.pandas_udf("string")
    def summarize(texts: pd.Series) -> pd.Series:
        return texts.map(
            lambda t: extractive_summary(t, words) if isinstance(t, str) and t.strip() else None
        )

    described = f"{model_id}+{EXTRACTIVE_SUMMARY_ID}" if task.summarizes else model_id

    def transform(df: DataFrame) -> DataFrame:
        has_label = F.col(label).isNotNull()
        return df.withColumns(
            {
                "enrichment_status": F.when(has_label, F.lit(STATUS_OK)).otherwise("failed"),
                "label": F.col(label),
                "confidence": F.col(confidence).cast("double"),
                "summary": summarize(F.col(ENRICH_TEXT))
                if task.summarizes
                else F.lit(None).cast("string"),
                "source": F.lit(SOURCE_MODEL),
                "model": F.lit(described),
                "prompt_version": F.lit(None).cast("string"),
                "tokens_in": F.lit(0),
                "tokens_out": F.lit(0),
                "cost_usd": F.lit(0.0),
                "attempts": F.lit(1),
                "error": F.when(~has_label, F.lit("the model had no text to classify")),
                "latency_ms": F.lit(0.0),
                "labels": F.when(has_label, F.array(F.col(label))),
                "rationale": F.when(
                    has_label,
                    F.format_string(
                        "model probability %.2f for this label after calibration",
                        F.col(confidence),
                    ),
                )
                if task.rationale
                else F.lit(None).cast("string"),
            }
        )

    return transform


ESTIMATE_SCHEMA = "input_tokens long, requests long, records long"


def estimate_request_tokens(
    task: TaskSpec, config: ProviderConfig, model: str
) -> Callable[[DataFrame], DataFrame]:
    """Per Spark partition of the inputs: the input tokens and requests sending them would take.

    Run on the inputs partitioned as the provider call will see them, so the packing is the same.
    """

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        packed: list[RecordIn] = []
        alone: list[RecordIn] = []
        for batch in batches:
            columns = (batch[INPUT_HASH], batch[ENRICH_TEXT], batch[INJECTION_SUSPECTED])
            for h, t, suspected in zip(*columns, strict=True):
                (alone if suspected else packed).append(RecordIn(id=h, text=t))
        tokens, requests = 0, 0
        # Suspected injections travel alone (see _enrich_batches).
        for group in [packed, *[[r] for r in alone]]:
            t, r = estimate_input_tokens(
                task,
                group,
                model,
                config.max_input_tokens_per_request,
                config.max_records_per_request,
            )
            tokens, requests = tokens + t, requests + r
        yield pd.DataFrame(
            {
                "input_tokens": [tokens],
                "requests": [requests],
                "records": [len(packed) + len(alone)],
            }
        )

    def transform(inputs: DataFrame) -> DataFrame:
        return inputs.select(INPUT_HASH, ENRICH_TEXT, INJECTION_SUSPECTED).mapInPandas(
            run, ESTIMATE_SCHEMA
        )

    return transform


def as_cache_hits(cached: DataFrame) -> DataFrame:
    """Cached outcomes as this run sees them: ``source`` = cache, no tokens or cost spent now."""
    return cached.select(
        *[
            F.lit("cache").alias(c)
            if c == "source"
            else F.lit(0).cast("int").alias(c)
            if c in ("tokens_in", "tokens_out", "attempts")
            else F.lit(0.0).alias(c)
            if c in ("cost_usd", "latency_ms")
            else F.col(c)
            if c in cached.columns
            # a cache written before the column existed
            else F.lit(None).cast(OUTCOME_TYPES[c]).alias(c)
            for c in OUTCOME_COLUMNS
        ]
    )


FAILURE_KINDS = {
    # First: the breaker's reason quotes the last error, whose marker must not win.
    "circuit open": "circuit_open",
    "refusal": "refusal",
    "truncated": "truncated",
    "malformed JSON": "malformed",
    "invalid response": "malformed",
    "label outside the taxonomy": "label_outside_taxonomy",
    "id missing": "id_mismatch",
    "id returned more than once": "id_mismatch",
    "run token budget": "budget",
}


FALLBACK_KIND = "fallback"


def with_failure_kind(df: DataFrame) -> DataFrame:
    """Add ``failure_kind``: ``none`` for ok rows, else what went wrong, from ``error``.

    An ok row that still carries an error was answered by the offline fallback because the LLM
    did not (``enrichment/providers/fallback.py``): its kind is ``fallback``. Never null, so
    quality rules can measure refusal, truncation or fallback rates over all rows.
    """
    kind: Column = F.lit("other")
    for marker, name in reversed(list(FAILURE_KINDS.items())):
        kind = F.when(F.col("error").contains(marker), F.lit(name)).otherwise(kind)
    transport = F.col("error").rlike(
        "^(RateLimitError|APIConnectionError|APITimeoutError|InternalServerError|APIStatusError)"
    )
    return df.withColumn(
        "failure_kind",
        F.when(
            (F.col("enrichment_status") == "ok") & F.col("error").isNotNull(), F.lit(FALLBACK_KIND)
        )
        .when(F.col("enrichment_status") == "ok", F.lit("none"))
        .when(F.col("error").isNull(), F.lit("other"))
        .when(transport, F.lit("transport"))
        .otherwise(kind),
    )


def fallback_dates(staged: DataFrame) -> set[date]:
    """The business dates of ``staged`` with a row the offline fallback answered because the
    LLM did not (an ``error``, or a task's ``<task>_error``, that starts with the fallback's
    prefix): ``infra/versions.record_audited`` has the next run compute them again."""
    errors = [c for c in staged.columns if c == "error" or c.endswith("_error")]
    if not errors:
        return set()
    fell_back = F.lit(False)
    for column in errors:
        fell_back = fell_back | F.coalesce(
            F.col(column).startswith(FALLBACK_ERROR_PREFIX), F.lit(False)
        )
    rows = staged.where(fell_back).select("business_date").distinct().collect()
    return {r["business_date"] for r in rows}
