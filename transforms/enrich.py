"""Enrichment on Spark: hash inputs, call a provider in Arrow batches, shape the provenance.

The provider runs inside ``mapInPandas`` (Arrow batches, never a row-at-a-time UDF) and is built
once per partition from a picklable ``ProviderConfig``.
"""

import json
from collections.abc import Callable, Iterator

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from enrichment.models import RecordIn, TaskSpec
from enrichment.providers import ProviderConfig, build_provider

INPUT_HASH = "input_hash"
ENRICH_TEXT = "_enrich_text"

OUTCOME_SCHEMA = (
    "input_hash string, enrichment_status string, label string, confidence double, "
    "summary string, source string, model string, prompt_version string, tokens_in int, "
    "tokens_out int, cost_usd double, attempts int, error string, latency_ms double"
)
OUTCOME_COLUMNS = [c.strip().split(" ")[0] for c in OUTCOME_SCHEMA.split(",")]


def cache_params(task: TaskSpec, config: ProviderConfig) -> str:
    """The parameters that change an answer, as a stable string for the cache key."""
    return json.dumps(
        {
            "task": task.name,
            "prompt_version": task.prompt_version,
            "model": config.model_id,
            "labels": task.taxonomy.names if task.taxonomy else None,
            "summary_max_words": task.summary_max_words,
        },
        sort_keys=True,
    )


def with_enrichment_input(
    text: Column, task: TaskSpec, config: ProviderConfig
) -> Callable[[DataFrame], DataFrame]:
    """Add the text sent for enrichment and its ``input_hash`` (the cache key).

    ``input_hash = sha256(task, prompt version, model, parameters, text)``: a prompt or model
    change gives every affected row a new key, and nothing else changes.
    """
    params = cache_params(task, config)

    def transform(df: DataFrame) -> DataFrame:
        return df.withColumn(ENRICH_TEXT, text).withColumn(
            INPUT_HASH, F.sha2(F.concat(F.lit(params + "\u001f"), F.col(ENRICH_TEXT)), 256)
        )

    return transform


def _enrich_batches(
    task: TaskSpec, config: ProviderConfig
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        provider = build_provider(config)
        for batch in batches:
            records = [
                RecordIn(id=h, text=t)
                for h, t in zip(batch[INPUT_HASH], batch[ENRICH_TEXT], strict=True)
            ]
            outcomes = provider.run(task, records)
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
                }
            )

    return run


def call_provider(task: TaskSpec, config: ProviderConfig) -> Callable[[DataFrame], DataFrame]:
    """Distinct ``(input_hash, _enrich_text)`` rows in, one outcome row per hash out."""

    def transform(inputs: DataFrame) -> DataFrame:
        return inputs.select(INPUT_HASH, ENRICH_TEXT).mapInPandas(
            _enrich_batches(task, config), OUTCOME_SCHEMA
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
            for c in OUTCOME_COLUMNS
        ]
    )


FAILURE_KINDS = {
    "refusal": "refusal",
    "truncated": "truncated",
    "malformed JSON": "malformed",
    "invalid response": "malformed",
    "label outside the taxonomy": "label_outside_taxonomy",
    "id missing": "id_mismatch",
    "id returned more than once": "id_mismatch",
    "run token budget": "budget",
}


def with_failure_kind(df: DataFrame) -> DataFrame:
    """Add ``failure_kind``: ``none`` for ok rows, else what went wrong, from ``error``.

    Never null, so quality rules can measure refusal or truncation rates over all rows.
    """
    kind: Column = F.lit("other")
    for marker, name in reversed(list(FAILURE_KINDS.items())):
        kind = F.when(F.col("error").contains(marker), F.lit(name)).otherwise(kind)
    transport = F.col("error").rlike(
        "^(RateLimitError|APIConnectionError|APITimeoutError|InternalServerError|APIStatusError)"
    )
    return df.withColumn(
        "failure_kind",
        F.when(F.col("enrichment_status") == "ok", F.lit("none"))
        .when(F.col("error").isNull(), F.lit("other"))
        .when(transport, F.lit("transport"))
        .otherwise(kind),
    )
