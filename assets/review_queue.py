"""The review queue: enriched values that need a person, staged, audited and published.

``gold.review_queue`` holds, per business date, one row per value of a reviewed gold table
(``infra/review.py``) that queues (``transforms/review.py``), with its status from the analysts'
decisions and the record's text as the model read it (redacted). It reads what each reviewed
table's latest publish of the date took from staging (the model's output, before decisions), so a
decided value stays in the queue as accepted or overridden. The rules are in
``expectations/review_queue.py``; the queue's health (size by age, share needing review, override
rates) is the gold step's metadata and checks.
"""

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from assets.publishing import Measured, publish_asset
from assets.sources import roster_names_on_dates, union_all
from expectations.review_queue import (
    CONSTRAINTS,
    NOT_NULL_COLUMNS,
    all_rule_names,
    review_queue_suite,
)
from infra import review, versions, wap
from infra.checks import (
    markdown_preview,
    suite_check_results,
    suite_check_specs,
    validation_metadata,
)
from infra.lakehouse import LakehouseResource, TableRef
from infra.settings import review_alerts, review_thresholds
from infra.spark import SessionSource, SparkResource
from transforms.frames import local_frame
from transforms.review import (
    QUEUE_SCHEMA,
    QUEUE_TABLE_COLUMNS,
    open_items_by_age,
    override_rates,
    queued_rows,
    record_texts,
    with_review_status,
)

QUEUE = wap.GoldTable("review_queue", not_null=NOT_NULL_COLUMNS, checks=tuple(CONSTRAINTS.items()))
TABLES = sorted(review.REVIEWED_TABLES)
RULES = all_rule_names(TABLES)
# The tables a reviewed table's record text is built from, when not its own output: (the asset
# that writes it, the step whose version says it changed).
TEXT_SOURCES = sorted(
    {
        (spec.text_asset, spec.text_step)
        for spec in review.REVIEWED_TABLES.values()
        if spec.text_asset is not None and spec.text_step is not None
    }
)
# A date's queue reads each reviewed table's publish of the date (what the model answered), the
# tables its record text is built from, the day's roster (names to redact), and the date's
# decisions and assignments (``external``: their status and assignee).
STAGING_STEP = versions.Step(
    "staging_review_queue",
    __name__,
    (
        *(versions.Upstream(f"gold_{name}") for name in TABLES),
        *(versions.Upstream(step) for step in sorted({step for _, step in TEXT_SOURCES})),
        versions.Upstream("silver_hris_roster"),
    ),
)
PREVIEW_COLUMNS = ["table_name", "key", "field", "proposed_value", "confidence", "reason",
                   "status", "assignee", "record_text"]  # fmt: skip
OPEN_ITEMS_CHECK = "open_items_within_limit"
OVERRIDE_RATE_CHECK = "override_rate_within_limit"
# The queue's last measurements, by what they were measured from (``measurement_key``): a run
# whose queue, reviewed tables, decisions, dates and as-of day are all unchanged reuses one.
MEASUREMENTS = TableRef("ops", "review_queue_measurements")
_MEASUREMENT_SCHEMA = StructType(
    [
        StructField("measured_key", StringType()),
        StructField("run_id", StringType()),
        StructField("measured_at", TimestampType()),
        StructField("metrics", StringType()),
    ]
)


def queue_candidate(
    session: SparkSession,
    lakehouse: LakehouseResource,
    days: list[date],
    decisions: list[dict],
    as_of: date,
    assignments: list[dict] | None = None,
) -> DataFrame:
    """The queue rows of a run's dates from every reviewed table's published model output.

    Each table's publish is read once: every table's queued values are one small job
    (materialized), and their statuses (one join of the decisions and assignments for every
    table) and record texts (each table's records of its queued keys) read it, not the tables.
    """
    decided = review.decisions_frame(session, decisions)
    assigned = review.assignments_frame(session, assignments or [])
    names = roster_names_on_dates(lakehouse, session, days)
    thresholds = review_thresholds()
    outputs = {}
    for spec in review.REVIEWED_TABLES.values():
        output = wap.read_published_staged(lakehouse, session, wap.GoldTable(spec.name), days)
        if output is not None:  # not published on any of the dates: nothing of it to review yet
            outputs[spec.name] = (spec, output)
    if not outputs:
        return local_frame(session, [], QUEUE_SCHEMA)
    candidates = union_all(
        [output.transform(spec.candidates(thresholds)) for spec, output in outputs.values()]
    ).localCheckpoint()
    # A table none of whose values queued needs no record text: its records are not read.
    queued_tables = {row[0] for row in candidates.select("table_name").distinct().collect()}
    texts = [
        _record_texts(session, lakehouse, spec, output, candidates, days, names)
        for spec, output in outputs.values()
        if spec.name in queued_tables
    ]
    queue = candidates.transform(with_review_status(decided, as_of, assigned))
    if not texts:
        return queue.withColumn("record_text", F.lit(None).cast("string"))
    return queue.join(union_all(texts), ["table_name", "key", "business_date"], "left").select(
        *QUEUE_TABLE_COLUMNS
    )


def _record_texts(
    session: SparkSession,
    lakehouse: LakehouseResource,
    spec: review.ReviewedTable,
    output: DataFrame,
    candidates: DataFrame,
    days: list[date],
    names: dict[date, list[str]],
) -> DataFrame:
    """The record texts of a reviewed table's queued values among ``candidates`` (every
    table's): ``table_name``, ``key``, ``business_date``, ``record_text``. Only the queued
    rows' records are read (of ``text_table``'s dates they were read from)."""
    queued = candidates.where(F.col("table_name") == spec.name)
    records = output.transform(queued_rows(spec.key_cols, queued))
    if spec.text_table is not None:
        rows = lakehouse.read_dates(session, spec.text_table, spec.text_days(records, days))
        records = spec.records(records, rows)
    return queued.transform(
        record_texts(records, spec.key_cols, spec.text(), names, spec.redaction_kinds)
    ).withColumn("table_name", F.lit(spec.name))


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    code_version=STAGING_STEP.code_version,
    deps=[
        *(AssetKey(f"gold_{name}") for name in TABLES),
        *(AssetKey(text_asset) for text_asset, _ in TEXT_SOURCES),
        AssetKey("silver_hris_roster"),
    ],
    group_name="staging",
    kinds={"spark", "delta"},
    check_specs=suite_check_specs("staging_review_queue", RULES, gated_per_date=True),
    description="Candidate review queue of a date: every enriched value of the reviewed gold "
    "tables below its task's confidence threshold, failed, skipped, withheld, answered by the "
    "fallback or suspected of injection, with its status from the analysts' decisions and the "
    "record's text redacted as the model read it. Audited before analysts see it.",
)
def staging_review_queue(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    days = versions.run_dates(context)
    decisions = review.decisions_on(spark.get_session, lakehouse, days)
    assignments = review.assignments_on(spark.get_session, lakehouse, days)
    decided = review.decision_fingerprints(decisions, days)
    assigned = review.decision_fingerprints(assignments, days, "assignment_id")
    plan = versions.plan_run(
        context,
        spark.get_session,
        lakehouse,
        STAGING_STEP,
        config=json.dumps(review_thresholds(), sort_keys=True),
        # A date's decisions give its statuses, its assignments its assignees.
        external={day: f"{decided[day]}:{assigned[day]}" for day in days},
    )
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    session = spark.session
    review.register_ledgers(session, lakehouse, decisions, assignments)
    todo = plan.to_run
    as_of = datetime.now(UTC).date()
    mine = [d for d in decisions if d["business_date"] in set(todo)]
    assigned_now = [a for a in assignments if a["business_date"] in set(todo)]
    candidate = queue_candidate(session, lakehouse, todo, mine, as_of, assigned_now)
    staged_version = wap.stage_dates(lakehouse, candidate, QUEUE, todo)
    reports = wap.audit_dates(
        lakehouse,
        session,
        QUEUE,
        todo,
        staged_version,
        lambda _: review_queue_suite(TABLES),
        context.run_id,
    )
    versions.record_audited(session, lakehouse, plan, reports, context.run_id)
    staged = lakehouse.read_dates(session, QUEUE.staging, todo, staged_version)
    by_reason = {
        f"{r[0]}.{r[1]}": r[2]
        for r in staged.groupBy("table_name", "reason").count().orderBy("table_name").collect()
    }
    yield MaterializeResult(
        metadata={
            **plan.metadata(),
            "rows": sum(r.rows for r in reports.values()),
            "staged_delta_version": staged_version,
            "table": QUEUE.staging.qualified,
            "queued_by_table_and_reason": MetadataValue.json(by_reason),
            "age_days_as_of": as_of.isoformat(),
            **validation_metadata([r for _, r in sorted(reports.items())]),
            "preview": MetadataValue.md(markdown_preview(staged.select(*PREVIEW_COLUMNS))),
        }
    )
    yield from suite_check_results(
        {day: (report, staged_version) for day, report in reports.items()},
        "staging_review_queue",
        [name for name, _, _ in RULES],
    )


@dataclass
class QueueMetrics:
    """The queue's health: open items by table and age, share needing review, override rates."""

    open_by_table_and_age: dict[str, dict[str, int]]
    share_needing_review: dict[str, dict]
    override_rates: list[dict]
    as_of: date

    @property
    def open_items(self) -> int:
        """Open items over every table and date."""
        return sum(sum(buckets.values()) for buckets in self.open_by_table_and_age.values())

    def to_json(self) -> str:
        """The metrics as JSON (``from_json`` reads them back)."""
        return json.dumps({**asdict(self), "as_of": self.as_of.isoformat()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "QueueMetrics":
        """Metrics stored by ``to_json``."""
        data = json.loads(text)
        return cls(
            data["open_by_table_and_age"],
            data["share_needing_review"],
            data["override_rates"],
            date.fromisoformat(data["as_of"]),
        )

    def metadata(self) -> dict:
        """Asset metadata: plots and tables in the Dagster UI."""
        return {
            "open_items": self.open_items,
            "open_items_by_table_and_age": MetadataValue.json(self.open_by_table_and_age),
            "share_needing_review": MetadataValue.json(self.share_needing_review),
            "override_rate_by_model": MetadataValue.json(self.override_rates),
            "metrics_as_of": self.as_of.isoformat(),
        }


def queue_metrics(
    session: SparkSession, lakehouse: LakehouseResource, days: list[date], as_of: date
) -> QueueMetrics:
    """Open items of the whole queue (all dates) by table and age on ``as_of``; for ``days``,
    the share of each reviewed field's values that queued; override rates of every decision."""
    decisions = review.decisions_on(session, lakehouse, None)
    decided = review.decisions_frame(session, decisions)
    by_age: dict[str, dict[str, int]] = {}
    share: dict[str, dict] = {}
    if lakehouse.exists(session, QUEUE.gold):
        queue = lakehouse.read(session, QUEUE.gold)
        for row in queue.transform(open_items_by_age(decided, as_of)).collect():
            by_age.setdefault(row["table_name"], {})[row["age_bucket"]] = row["items"]
        queued = {
            (r["table_name"], r["field"]): r["count"]
            for r in queue.where(F.col("business_date").isin(days))
            .groupBy("table_name", "field")
            .count()
            .collect()
        }
        for spec in review.REVIEWED_TABLES.values():
            if not lakehouse.exists(session, spec.gold):
                continue
            rows = lakehouse.read_dates(session, spec.gold, days).count()
            for field in spec.fields:
                n = queued.get((spec.name, field.name), 0)
                share[f"{spec.name}.{field.name}"] = {
                    "queued": n,
                    "rows": rows,
                    "share": round(n / rows, 4) if rows else None,
                }
    rates = [
        {
            **{k: r[k] for k in ("table_name", "field", "model", "prompt_version")},
            "decisions": r["decisions"],
            "overridden": r["overridden"],
            "override_rate": round(r["override_rate"], 4),
        }
        for r in override_rates(decided).orderBy("table_name", "field", "model").collect()
    ]
    return QueueMetrics(by_age, share, rates, as_of)


def metric_checks(metrics: QueueMetrics, alerts: dict[str, float]) -> list[AssetCheckResult]:
    """The queue's two warnings: too many open items; a model overridden too often."""
    limit = int(alerts["max_open_items"])
    noisy = [
        r
        for r in metrics.override_rates
        if r["decisions"] >= alerts["min_decisions"]
        and r["override_rate"] > alerts["max_override_rate"]
    ]
    return [
        AssetCheckResult(
            asset_key="gold_review_queue",
            check_name=OPEN_ITEMS_CHECK,
            passed=metrics.open_items <= limit,
            severity=AssetCheckSeverity.WARN,
            metadata={"open_items": metrics.open_items, "max_open_items": limit},
        ),
        AssetCheckResult(
            asset_key="gold_review_queue",
            check_name=OVERRIDE_RATE_CHECK,
            passed=not noisy,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "max_override_rate": alerts["max_override_rate"],
                "min_decisions": int(alerts["min_decisions"]),
                "over_the_limit": MetadataValue.json(noisy),
            },
        ),
    ]


def measurement_key(
    spark: SparkSession | SessionSource, lakehouse: LakehouseResource, days: list[date], as_of: date
) -> str:
    """What ``queue_metrics`` reads, as one hash: the Delta versions of the queue's gold table,
    of every reviewed gold table and of ``ops.review_decisions`` (a local ``_delta_log`` is
    listed without Spark), the run's dates, the as-of day and the code that measures."""
    tables = [QUEUE.gold, *(spec.gold for spec in review.REVIEWED_TABLES.values())]
    inputs = {
        "code": versions.code_version(__name__),
        "tables": {
            t.qualified: lakehouse.current_version(spark, t)
            for t in [*tables, review.REVIEW_DECISIONS]
        },
        "days": [d.isoformat() for d in sorted(set(days))],
        "as_of": as_of.isoformat(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Measurement:
    """Queue metrics, and the run that measured them and when."""

    metrics: QueueMetrics
    run_id: str
    measured_at: datetime


def last_measurement(
    spark: SparkSession | SessionSource, lakehouse: LakehouseResource, key: str
) -> Measurement | None:
    """The latest measurement made from the inputs ``key`` names, if any (delta-rs on a local
    lakehouse: no Spark)."""
    rows = lakehouse.read_rows(
        spark,
        MEASUREMENTS,
        ["run_id", "measured_at", "metrics"],
        equals={"measured_key": key},
    )
    if not rows:
        return None
    row = max(rows, key=lambda r: r["measured_at"])
    return Measurement(QueueMetrics.from_json(row["metrics"]), row["run_id"], row["measured_at"])


def measure_queue(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: LakehouseResource,
    plan: versions.VersionPlan,
) -> Measured:
    """The queue's health after its publish, on every run, skipped dates or not (items age
    whether or not their date changed): metrics and the two warnings.

    Where nothing it reads changed since an earlier measurement (``measurement_key``: the
    tables' Delta versions, the run's dates, the as-of day), that measurement is reused without
    Spark; otherwise the metrics are computed and recorded in ``ops.review_queue_measurements``.
    """
    as_of = datetime.now(UTC).date()
    key = measurement_key(spark.get_session, lakehouse, plan.days, as_of)
    earlier = last_measurement(spark.get_session, lakehouse, key)
    if earlier is not None:
        metrics = earlier.metrics
        at = earlier.measured_at.replace(tzinfo=None).isoformat(timespec="seconds")
        provenance = {
            "metrics_reused": f"queue, reviewed tables, decisions, dates and as-of day unchanged "
            f"since run {earlier.run_id} measured them at {at} UTC: reused",
            "metrics_measured_at": at,
        }
    else:
        session = spark.session
        metrics = queue_metrics(session, lakehouse, plan.days, as_of)
        at = datetime.now(UTC).replace(tzinfo=None)
        row = {
            "measured_key": key,
            "run_id": context.run_id,
            "measured_at": at,
            "metrics": metrics.to_json(),
        }
        lakehouse.write_rows(session, [row], _MEASUREMENT_SCHEMA, MEASUREMENTS, partitioned=False)
        provenance = {
            "metrics_reused": "no: measured now",
            "metrics_measured_at": at.isoformat(timespec="seconds"),
        }
    return Measured(
        {**metrics.metadata(), **provenance}, tuple(metric_checks(metrics, review_alerts()))
    )


gold_review_queue = publish_asset(
    QUEUE,
    staging_review_queue,
    "The review queue analysts work from (make review). Grain: one row per "
    "(table_name, key, field) per business_date; key is the record's business key as JSON. "
    "Status open/accepted/overridden from ops.review_decisions; record_text is the record "
    "redacted as the model read it. Metadata: open items by table and age, share of values "
    "needing review, override rate per model and prompt version.",
    check_specs=[
        AssetCheckSpec(
            OPEN_ITEMS_CHECK,
            asset="gold_review_queue",
            description="[warn] Open items over every table and date at most "
            "REVIEW_ALERTS max_open_items.",
        ),
        AssetCheckSpec(
            OVERRIDE_RATE_CHECK,
            asset="gold_review_queue",
            description="[warn] No model and prompt version with at least REVIEW_ALERTS "
            "min_decisions decisions overridden more often than max_override_rate.",
        ),
    ],
    measure=measure_queue,
)
