"""Group summaries on Spark: a content key per group, cached answers as hits, each miss once.

A group's key is ``input_hash = sha256(params, its texts in order as a JSON array)``, with
``params`` from :func:`enrichment.group_summary.group_cache_params` (task, prompt version,
model, word bound, request budget): the same texts under the same prompt and model are the same
narrative, whichever night or entity they belong to, so they are summarized once.
"""

from collections.abc import Callable, Sequence
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from enrichment.group_summary import (
    GROUP_SUMMARY_COLUMNS,
    GROUP_SUMMARY_FIELDS,
    group_summarizer,
    group_summary_schema,
)
from enrichment.models import SOURCE_CACHE, TaskSpec
from enrichment.providers.base import ProviderConfig

GROUP_KEY = "input_hash"
# What this run spent on an answer it read from the cache: nothing.
_NOT_SPENT = {
    "tokens_in": "int",
    "tokens_out": "int",
    "attempts": "int",
    "cost_usd": "double",
    "latency_ms": "double",
}
_FIELD_TYPES = dict(c.strip().split(" ", 1) for c in GROUP_SUMMARY_FIELDS.split(", "))


def with_group_key(
    group_cols: Sequence[str], text_col: str, order_col: str, params: str
) -> Callable[[DataFrame], DataFrame]:
    """Rows of texts to one row per group: ``group_cols`` and its ``input_hash``."""

    def transform(lines: DataFrame) -> DataFrame:
        ordered = F.transform(
            F.sort_array(F.collect_list(F.struct(order_col, text_col))), lambda r: r[text_col]
        )
        return lines.groupBy(*group_cols).agg(
            F.sha2(F.concat(F.lit(params + "\u001f"), F.to_json(ordered)), 256).alias(GROUP_KEY)
        )

    return transform


def summarize_each_key_once(
    lines: DataFrame,
    keys: DataFrame,
    config: ProviderConfig,
    task: TaskSpec,
    *,
    group_cols: Sequence[str],
    text_col: str,
    order_col: str,
    label_col: str,
) -> DataFrame:
    """One summary per distinct ``input_hash`` of ``keys``, from the lines of one group holding it.

    Lazy: the provider is called when the result is computed, so compute it once (checkpoint it)
    before more than one action reads it.
    """
    # Groups with the same texts share a key; the first of them (by group columns) is sent.
    first = keys.groupBy(GROUP_KEY).agg(F.min(F.struct(*group_cols)).alias("_first"))
    first = first.select(
        GROUP_KEY, *[F.col(f"_first.{c}").alias(f"_first_{c}") for c in group_cols]
    )
    # Null-safe: a group whose key column is null is a group too (a plain join would drop it).
    same_group = reduce(
        lambda a, b: a & b, [F.col(c).eqNullSafe(F.col(f"_first_{c}")) for c in group_cols]
    )
    chosen = lines.join(first, same_group).select(
        *dict.fromkeys([*group_cols, text_col, order_col, label_col]), GROUP_KEY
    )
    return chosen.groupBy(GROUP_KEY).applyInPandas(
        group_summarizer(
            config=config,
            task=task,
            group_col=GROUP_KEY,
            text_col=text_col,
            order_col=order_col,
            label_col=label_col,
        ),
        group_summary_schema(GROUP_KEY),
    )


def as_group_cache_hits(cached: DataFrame) -> DataFrame:
    """Cached narratives as this run sees them: ``source`` = cache, nothing spent now.

    ``model`` and ``prompt_version`` still name what wrote the narrative, as for
    ``transforms.enrich.as_cache_hits``.
    """
    return cached.select(
        GROUP_KEY,
        *[
            F.lit(SOURCE_CACHE).alias(c)
            if c == "source"
            else F.lit(0).cast(_NOT_SPENT[c]).alias(c)
            if c in _NOT_SPENT
            else F.col(c).cast(_FIELD_TYPES[c])
            for c in GROUP_SUMMARY_COLUMNS
        ],
    )
