"""The human review loop on Spark: which enriched values queue for an analyst, and how an
analyst's decisions land on top of model output.

The queue's grain is one row per (``table_name``, ``key``, ``business_date``, ``field``): a table's
business key is carried as ``key``, a JSON object of the key columns as strings
(``{"report_id":"R1","line_id":"2"}``), so one queue holds every enriched table. Decisions
(``ops.review_decisions``, ``infra/review.py``) have the same grain; the latest one wins.
"""

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from documents.fields import KIND_AMOUNT, KIND_CURRENCY, KIND_DATE, KIND_STRING
from expectations.pii import PII_PATTERNS
from transforms.enrich import ENRICH_TEXT, with_redacted_text

# Why a value queues, strongest first: a row with several reasons is queued once, for the first.
SUSPECTED_INJECTION = "SUSPECTED_INJECTION"
ENRICHMENT_FAILED = "ENRICHMENT_FAILED"
SKIPPED_BUDGET = "SKIPPED_BUDGET"
# Withheld: too little left after redaction to send (``enrichment_status`` = redacted).
WITHHELD = "WITHHELD"
# Answered by the offline model because the LLM did not (``failure_kind`` = fallback).
FALLBACK = "FALLBACK"
LOW_CONFIDENCE = "LOW_CONFIDENCE"
REASONS = (
    SUSPECTED_INJECTION,
    ENRICHMENT_FAILED,
    SKIPPED_BUDGET,
    WITHHELD,
    FALLBACK,
    LOW_CONFIDENCE,
)

OPEN, ACCEPTED, OVERRIDDEN = "open", "accepted", "overridden"
SOURCE_HUMAN = "human"
# ``model`` of a value a person decided (the column is NOT NULL in gold); who is in ``reviewed_by``.
HUMAN_MODEL = "human-review"
# A person's value is certain as far as the pipeline is concerned: it never queues again, and
# the history model may weigh it above any model's answer.
HUMAN_CONFIDENCE = 1.0

CANDIDATE_COLUMNS = [
    "table_name",
    "key",
    "business_date",
    "field",
    "proposed_value",
    "confidence",
    "threshold",
    "source",
    "model",
    "prompt_version",
    "reason",
]
QUEUE_COLUMNS = [
    *CANDIDATE_COLUMNS,
    "status",
    "assignee",
    "decided_by",
    "decided_at",
    "age_days",
]
# gold.review_queue: the queue columns and the record's text as the model read it (redacted).
QUEUE_SCHEMA = (
    "table_name string, key string, business_date date, field string, proposed_value string, "
    "confidence double, threshold double, source string, model string, prompt_version string, "
    "reason string, status string, assignee string, decided_by string, decided_at timestamp, "
    "age_days int, record_text string"
)
QUEUE_TABLE_COLUMNS = [*QUEUE_COLUMNS, "record_text"]
# Age buckets of open items (days since the business date), youngest first.
AGE_BUCKETS = ((1, "0-1 days"), (7, "2-7 days"), (30, "8-30 days"), (None, "over 30 days"))
# ops.review_decisions: one row per decision, append-only. ``decision`` is accepted (new value =
# the proposed one) or overridden; ``model``/``prompt_version``/``confidence`` are what was
# reviewed (override rates per model and prompt version come from them).
DECISION_SCHEMA = (
    "decision_id string, table_name string, key string, business_date date, field string, "
    "decision string, old_value string, new_value string, comment string, decided_by string, "
    "reviewer_role string, decided_at timestamp, model string, prompt_version string, "
    "confidence double"
)


# A free value's kinds (a field without a taxonomy): the extracted fields' kinds
# (``documents/fields.py``) and free text.
KIND_TEXT = "text"
FREE_KINDS = (KIND_STRING, KIND_DATE, KIND_AMOUNT, KIND_CURRENCY, KIND_TEXT)
# Longest free value a person may enter: one field as printed, or a paragraph of text.
FREE_VALUE_MAX_CHARS = {KIND_STRING: 200, KIND_TEXT: 2000}
_AMOUNT = re.compile(r"^-?\d{1,16}(\.\d{1,2})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# ops.review_assignments: one row per assignment of a queued value to a reviewer, append-only;
# the latest per queue grain is in force (``assignee`` null: unassigned again).
ASSIGNMENT_SCHEMA = (
    "assignment_id string, table_name string, key string, business_date date, field string, "
    "assignee string, assigned_by string, assigner_role string, assigned_at timestamp"
)
GRAIN = ["table_name", "key", "business_date", "field"]


@dataclass(frozen=True)
class ReviewField:
    """One enriched column of a gold table: its confidence column, the prefix of its provenance
    columns (``urgency_`` for ``urgency_source``…) and the enrichment task that produced it.

    ``kind`` None: a person chooses a label of the field's taxonomy; otherwise a free value of
    that kind (``FREE_KINDS``, checked by ``free_value``). ``only_when``: a boolean column
    outside which the value never queues (an optional field a document does not state).
    """

    name: str
    confidence: str
    task: str
    prefix: str = ""
    kind: str | None = None
    only_when: str | None = None


def free_value(kind: str, value: str | None) -> str:
    """A person's free value of ``kind`` as gold stores it, or ``ValueError`` saying why not.

    Strings and text are stripped and bounded (``FREE_VALUE_MAX_CHARS``; a string is one line);
    a date is ISO 8601 (``2026-03-31``); an amount a decimal with at most two places (``1234.50``,
    no thousands separator); a currency an ISO 4217 code (``EUR``). Text (a sentence or a
    paragraph that gold publishes) may hold no e-mail, phone, national id or card number: gold
    holds no personal data, and a person's text is not redacted after them.
    """
    text = (value or "").strip()
    if not text:
        raise ValueError("an override needs a value")
    if kind == KIND_DATE:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"{text!r} is not a date as YYYY-MM-DD") from None
    if kind == KIND_AMOUNT:
        if not _AMOUNT.match(text):
            raise ValueError(f"{text!r} is not an amount such as 1234.50 (no separators)")
        return f"{Decimal(text):.2f}"
    if kind == KIND_CURRENCY:
        if not _CURRENCY.match(text.upper()):
            raise ValueError(f"{text!r} is not a three-letter ISO 4217 currency code")
        return text.upper()
    if kind not in FREE_VALUE_MAX_CHARS:
        raise ValueError(f"no free value of kind {kind!r} ({', '.join(FREE_KINDS)})")
    if len(text) > FREE_VALUE_MAX_CHARS[kind]:
        raise ValueError(f"at most {FREE_VALUE_MAX_CHARS[kind]} characters")
    if kind == KIND_STRING and "\n" in text:
        raise ValueError("a field's value is one line")
    if kind == KIND_TEXT:
        found = sorted(name for name, pattern in PII_PATTERNS.items() if re.search(pattern, text))
        if found:
            raise ValueError(f"the text holds personal data ({', '.join(found)}): leave it out")
    return text


def key_json(key_cols: Sequence[str]) -> Column:
    """The business key as the queue carries it: a JSON object of the key columns as strings."""
    return F.to_json(F.struct(*[F.col(c).cast("string").alias(c) for c in key_cols]))


def key_of(values: Mapping[str, object]) -> str:
    """``key_json`` in Python, for a record's key values in key order."""
    return json.dumps(
        {c: str(v) for c, v in values.items()}, separators=(",", ":"), ensure_ascii=False
    )


def _reason(field: ReviewField, threshold: float, has_injection_flag: bool) -> Column:
    p = field.prefix
    status, kind = F.col(f"{p}enrichment_status"), F.col(f"{p}failure_kind")
    injection = F.coalesce(F.col("injection_suspected"), F.lit(False))
    if not has_injection_flag:
        injection = F.lit(False)
    confidence = F.col(field.confidence)
    reviewable = F.lit(True) if field.only_when is None else F.col(field.only_when)
    return (
        F.when(~F.coalesce(reviewable, F.lit(False)), F.lit(None))
        # A value a person decided never queues again.
        .when(F.col(f"{p}source").eqNullSafe(SOURCE_HUMAN), F.lit(None))
        .when(injection, F.lit(SUSPECTED_INJECTION))
        .when((status == "skipped") | kind.eqNullSafe("budget"), F.lit(SKIPPED_BUDGET))
        # A row that does not say it succeeded did not.
        .when(status.isNull() | (status == "failed"), F.lit(ENRICHMENT_FAILED))
        .when(status == "redacted", F.lit(WITHHELD))
        .when(kind.eqNullSafe("fallback"), F.lit(FALLBACK))
        .when(confidence.isNull() | (confidence < threshold), F.lit(LOW_CONFIDENCE))
        .cast("string")
    )


def review_candidates(
    table: str,
    key_cols: Sequence[str],
    fields: Sequence[ReviewField],
    thresholds: Mapping[str, float],
) -> Callable[[DataFrame], DataFrame]:
    """The values of an enriched gold frame that need a person: ``CANDIDATE_COLUMNS``.

    A value queues when its confidence is below its task's threshold (null counts as below),
    when its enrichment failed, was skipped for the token budget, was withheld after redaction
    or answered by the offline fallback, or when the row's text looked like it addressed the
    model (``injection_suspected``). One row per key, date and field, with the strongest reason.
    """

    def transform(gold: DataFrame) -> DataFrame:
        has_flag = "injection_suspected" in gold.columns
        # One struct per field, exploded: every field is read in one pass over ``gold``.
        per_field = [
            F.struct(
                F.lit(field.name).alias("field"),
                F.col(field.name).cast("string").alias("proposed_value"),
                F.col(field.confidence).cast("double").alias("confidence"),
                F.lit(thresholds[field.task]).cast("double").alias("threshold"),
                F.col(f"{field.prefix}source").alias("source"),
                F.col(f"{field.prefix}model").alias("model"),
                F.col(f"{field.prefix}prompt_version").alias("prompt_version"),
                _reason(field, thresholds[field.task], has_flag).alias("reason"),
            )
            for field in fields
        ]
        return gold.select(
            F.lit(table).alias("table_name"),
            key_json(key_cols).alias("key"),
            "business_date",
            F.inline(F.array(*per_field)),
        ).where(F.col("reason").isNotNull())

    return transform


def latest_decisions(decisions: DataFrame) -> DataFrame:
    """The decision in force per (table, key, business date, field): the latest one made."""
    grain = ["table_name", "key", "business_date", "field"]
    newest = Window.partitionBy(*grain).orderBy(
        F.col("decided_at").desc(), F.col("decision_id").desc()
    )
    return (
        decisions.withColumn("_rank", F.row_number().over(newest))
        .where(F.col("_rank") == 1)
        .drop("_rank")
    )


def latest_assignments(assignments: DataFrame) -> DataFrame:
    """The assignment in force per (table, key, business date, field): the latest one made."""
    newest = Window.partitionBy(*GRAIN).orderBy(
        F.col("assigned_at").desc(), F.col("assignment_id").desc()
    )
    return (
        assignments.withColumn("_rank", F.row_number().over(newest))
        .where(F.col("_rank") == 1)
        .drop("_rank")
    )


def with_review_status(
    decisions: DataFrame, as_of: date, assignments: DataFrame | None = None
) -> Callable[[DataFrame], DataFrame]:
    """Add ``status`` (open, accepted, overridden: the decision in force), ``assignee`` (the
    reviewer the item is assigned to, ``assignments`` in force; null when nobody is),
    ``decided_by`` and ``decided_at`` (null while open) and ``age_days`` (days from the business
    date to ``as_of``) to queue candidates: the ``QUEUE_COLUMNS``."""

    def transform(candidates: DataFrame) -> DataFrame:
        decided = latest_decisions(decisions).select(
            *GRAIN, F.col("decision").alias("status"), "decided_by", "decided_at"
        )
        if assignments is not None:
            assigned = latest_assignments(assignments).select(*GRAIN, "assignee")
            candidates = candidates.join(assigned, GRAIN, "left")
        else:
            candidates = candidates.withColumn("assignee", F.lit(None).cast("string"))
        return (
            candidates.join(decided, GRAIN, "left")
            .withColumn("status", F.coalesce(F.col("status"), F.lit(OPEN)))
            .withColumn("age_days", F.datediff(F.lit(as_of), F.col("business_date")))
            .select(*QUEUE_COLUMNS)
        )

    return transform


def _decisions_on(decisions: DataFrame, table: str, field: ReviewField) -> DataFrame:
    return (
        latest_decisions(decisions)
        .where((F.col("table_name") == table) & (F.col("field") == field.name))
        .select(
            F.col("key").alias("_review_key"),
            "business_date",
            F.col("new_value").alias("_new_value"),
            F.col("decided_by").alias("_decided_by"),
            F.col("decided_at").alias("_decided_at"),
        )
    )


def apply_decisions(
    decisions: DataFrame, table: str, key_cols: Sequence[str], field: ReviewField
) -> Callable[[DataFrame], DataFrame]:
    """Put the decision in force for ``field`` on top of model output in a gold frame.

    A decided row gets the person's value, ``source`` = human, ``model`` = ``HUMAN_MODEL``,
    confidence ``HUMAN_CONFIDENCE``, status ok and ``failure_kind`` none (prefixed as the field's
    provenance is), and ``<prefix>reviewed_by``/``<prefix>reviewed_at``, null on other rows. An
    accepted value is applied too: a person vouched for it. Whatever the model answers on a
    re-run, the decision wins. Rows and other columns are unchanged.
    """
    p = field.prefix

    def transform(gold: DataFrame) -> DataFrame:
        decided = F.col("_new_value").isNotNull()

        def human(value: Column, column: str) -> Column:
            return F.when(decided, value).otherwise(F.col(column))

        joined = gold.withColumn("_review_key", key_json(key_cols)).join(
            _decisions_on(decisions, table, field), ["_review_key", "business_date"], "left"
        )
        replaced = {
            field.name: human(F.col("_new_value"), field.name),
            field.confidence: human(F.lit(HUMAN_CONFIDENCE), field.confidence),
            f"{p}source": human(F.lit(SOURCE_HUMAN), f"{p}source"),
            f"{p}model": human(F.lit(HUMAN_MODEL), f"{p}model"),
            f"{p}enrichment_status": human(F.lit("ok"), f"{p}enrichment_status"),
            f"{p}failure_kind": human(F.lit("none"), f"{p}failure_kind"),
        }
        return joined.select(
            *[replaced[c].alias(c) if c in replaced else F.col(c) for c in gold.columns],
            F.col("_decided_by").alias(f"{p}reviewed_by"),
            F.col("_decided_at").alias(f"{p}reviewed_at"),
        )

    return transform


# Who decided which field of a row whose fields carry their own provenance (an array of
# per-field structs, as ``gold.invoice_documents.fields``): one element per decided field.
REVIEWED_FIELDS_TYPE = "array<struct<field:string,reviewed_by:string,reviewed_at:timestamp>>"


def apply_field_decisions(
    decisions: DataFrame,
    table: str,
    key_cols: Sequence[str],
    fields: Sequence[ReviewField],
    fields_col: str = "fields",
) -> Callable[[DataFrame], DataFrame]:
    """``apply_decisions`` for fields whose provenance is their element of ``fields_col`` (an
    array of structs ``field``, ``value``, ``confidence``, ``source``…), not the row's.

    A field decided on a row gets the person's value in its column (cast to its type) and in its
    element (``confidence`` ``HUMAN_CONFIDENCE``, ``source`` human, the other members kept; a
    field the model did not return gets an element with nulls there), and an element in
    ``reviewed_fields`` (``REVIEWED_FIELDS_TYPE``) naming who decided and when (empty on a row
    nobody reviewed). The row's own provenance (its model, status, tokens) is the extraction's
    and stays. One join for every field. Rows and other columns are unchanged.
    """
    names = [f.name for f in fields]

    def transform(gold: DataFrame) -> DataFrame:
        element = gold.schema[fields_col].dataType.elementType
        decided = (
            latest_decisions(decisions)
            .where((F.col("table_name") == table) & F.col("field").isin(names))
            .groupBy(F.col("key").alias("_review_key"), "business_date")
            .agg(
                F.map_from_entries(
                    F.collect_list(
                        F.struct("field", F.struct("new_value", "decided_by", "decided_at"))
                    )
                ).alias("_decided")
            )
        )
        joined = gold.withColumn("_review_key", key_json(key_cols)).join(
            decided, ["_review_key", "business_date"], "left"
        )
        replaced: dict[str, Column] = {}
        humans, reviewers = [], []
        for name in names:
            mine = F.try_element_at("_decided", F.lit(name))
            old = F.try_element_at(F.filter(fields_col, named_element(name)), F.lit(1))
            given = {
                "field": F.lit(name),
                "value": mine["new_value"],
                "confidence": F.lit(HUMAN_CONFIDENCE),
                "source": F.lit(SOURCE_HUMAN),
            }
            human = F.struct(
                *[
                    given.get(m.name, old[m.name]).cast(m.dataType).alias(m.name)
                    for m in element.fields
                ]
            )
            humans.append(F.when(mine.isNotNull(), human))
            replaced[name] = F.when(
                mine.isNotNull(), mine["new_value"].cast(gold.schema[name].dataType)
            ).otherwise(F.col(name))
            reviewers.append(
                F.when(
                    mine.isNotNull(),
                    F.struct(
                        F.lit(name).alias("field"),
                        mine["decided_by"].alias("reviewed_by"),
                        mine["decided_at"].cast("timestamp").alias("reviewed_at"),
                    ),
                )
            )
        undecided = F.filter(
            fields_col,
            lambda e: (
                ~F.coalesce(F.array_contains(F.map_keys("_decided"), e["field"]), F.lit(False))
            ),
        )
        elements = F.when(F.col("_decided").isNull(), F.col(fields_col)).otherwise(
            F.concat(
                F.coalesce(undecided, F.array().cast(gold.schema[fields_col].dataType)),
                F.array_compact(F.array(*humans)),
            )
        )
        replaced[fields_col] = elements
        reviewed = F.array_compact(F.array(*reviewers)).cast(REVIEWED_FIELDS_TYPE)
        return joined.select(
            *[replaced[c].alias(c) if c in replaced else F.col(c) for c in gold.columns],
            reviewed.alias("reviewed_fields"),
        )

    return transform


def named_element(field: str) -> Callable[[Column], Column]:
    """A predicate for ``F.filter`` over an array of per-field structs: the element of ``field``."""
    return lambda element: element["field"] == field


def unmatched_decisions(
    decisions: DataFrame, table: str, key_cols: Sequence[str], fields: Sequence[ReviewField]
) -> Callable[[DataFrame], DataFrame]:
    """The decisions in force for ``fields`` whose key and date are not in a gold frame: a key
    that no longer exists, to report (never dropped silently). Pass the decisions of the dates
    being published; a decision of another date is not unmatched, only elsewhere. One join for
    every field of the table."""
    names = [f.name for f in fields]

    def transform(gold: DataFrame) -> DataFrame:
        present = gold.select(key_json(key_cols).alias("key"), "business_date")
        return (
            latest_decisions(decisions)
            .where((F.col("table_name") == table) & F.col("field").isin(names))
            .join(present, ["key", "business_date"], "left_anti")
            .select(*decisions.columns)
        )

    return transform


def queued_rows(key_cols: Sequence[str], queue: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """The rows of a table's frame (key columns ``key_cols`` and ``business_date``) whose key
    and date are among the queue rows ``queue`` (``key``, ``business_date``); columns unchanged."""

    def transform(rows: DataFrame) -> DataFrame:
        wanted = queue.select(F.col("key").alias("_queue_key"), "business_date").distinct()
        return (
            rows.withColumn("_queue_key", key_json(key_cols))
            .join(wanted, ["_queue_key", "business_date"], "left_semi")
            .select(*rows.columns)
        )

    return transform


def record_texts(
    records: DataFrame,
    key_cols: Sequence[str],
    text: Column,
    names: Mapping[date, Sequence[str]],
    kinds: Sequence[str] | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """The text of each record of a frame of queue rows (``key``, ``business_date``) as the
    model read it: ``key``, ``business_date``, ``record_text``, one row per queued record that
    has one (``with_record_text``). Only the queued records' text is built and redacted."""

    def transform(queue: DataFrame) -> DataFrame:
        return (
            records.transform(queued_rows(key_cols, queue))
            .select(key_json(key_cols).alias("key"), "business_date", text.alias("_text"))
            .dropDuplicates(["key", "business_date"])
            .transform(with_redacted_text(F.col("_text"), names, kinds))
            .select("key", "business_date", F.col(ENRICH_TEXT).alias("record_text"))
        )

    return transform


def with_record_text(
    records: DataFrame,
    key_cols: Sequence[str],
    text: Column,
    names: Mapping[date, Sequence[str]],
    kinds: Sequence[str] | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """Add ``record_text`` to queue rows: the record's text as the model read it.

    ``records`` hold the columns ``text`` is built from (the enrichment's own text builder) with
    the key columns and ``business_date``; the text is redacted with each date's roster ``names``
    by the enrichment's own redaction (``with_redacted_text``), so it is the text that was hashed
    and sent, never more (``kinds``: the personal data its enrichment redacts, all when None).
    Only the queued records are redacted (``record_texts``). A queued key without its record
    gets a null text.
    """

    def transform(queue: DataFrame) -> DataFrame:
        texts = queue.transform(record_texts(records, key_cols, text, names, kinds))
        return queue.join(texts, ["key", "business_date"], "left")

    return transform


def _age_bucket(age: Column) -> Column:
    bucket = None
    for upper, name in AGE_BUCKETS:
        condition = F.lit(True) if upper is None else age <= upper
        bucket = F.when(condition, name) if bucket is None else bucket.when(condition, name)
    return bucket


def open_items_by_age(decisions: DataFrame, as_of: date) -> Callable[[DataFrame], DataFrame]:
    """Open items of a queue frame per table and age bucket (``AGE_BUCKETS``) on ``as_of``.

    An item still open in the published queue but decided since (a row in ``decisions``) is
    not open any more. Returns ``table_name``, ``age_bucket``, ``items``.
    """

    def transform(queue: DataFrame) -> DataFrame:
        grain = ["table_name", "key", "business_date", "field"]
        return (
            queue.where(F.col("status") == OPEN)
            .join(decisions.select(*grain), grain, "left_anti")
            .withColumn("age_bucket", _age_bucket(F.datediff(F.lit(as_of), "business_date")))
            .groupBy("table_name", "age_bucket")
            .agg(F.count(F.lit(1)).alias("items"))
        )

    return transform


def override_rates(decisions: DataFrame) -> DataFrame:
    """Per table, field, model and prompt version reviewed: decisions in force, how many
    overrode the model, and the share (``override_rate``). A value decided twice counts once,
    as its latest decision."""
    return (
        latest_decisions(decisions)
        .groupBy("table_name", "field", "model", "prompt_version")
        .agg(
            F.count(F.lit(1)).alias("decisions"),
            F.sum(F.when(F.col("decision") == OVERRIDDEN, 1).otherwise(0)).alias("overridden"),
        )
        .withColumn("override_rate", F.col("overridden") / F.col("decisions"))
    )
