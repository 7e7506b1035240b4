"""Write-audit-publish on Delta: the one gate every gold table goes through.

1. ``stage``: write the candidate partition to ``staging.<table>`` once.
2. ``audit``: validate the staged partition, at that Delta version, with the table's suite.
3. ``publish``: only if the audit of that exact version passed, replace the date in
   ``gold.<table>`` in one Delta commit and record it in ``ops.wap_ledger``.

Each step takes a run's dates at once (``stage_dates``, ``audit_dates``, ``publish_dates``): one
commit per table per run, ledgers included, and a verdict per date, so one bad date is refused
alone.
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructField, StructType

from expectations.runner import ValidationReport, validate_dates
from expectations.suite import Suite
from infra.lakehouse import LakehouseResource, TableRef, commit_notes

WAP_LEDGER = TableRef("ops", "wap_ledger")
VALIDATION_RESULTS = TableRef("ops", "validation_results")
_RESULTS_SCHEMA = (
    "suite string, table string, business_date date, table_version long, rule string, "
    "severity string, success boolean, rows_checked long, unexpected_count long, "
    "offending_keys string, observed_value string, run_id string, at timestamp"
)
# The key of a gold commit's ``userMetadata`` (JSON) that names each published date's staged
# version.
PUBLISH_NOTE = "wap_published_staged_versions"
_LEDGER_SCHEMA = (
    "table string, business_date date, event string, staged_version long, passed boolean, "
    "rules_failed string, gold_version long, run_id string, at timestamp"
)


class PublishRefusedError(RuntimeError):
    """The staged partition has not passed its audit; gold is left as it was."""


@dataclass(frozen=True)
class GoldTable:
    """A gold table, its staging twin and the Delta constraints it must always meet."""

    name: str
    not_null: tuple[str, ...] = ()
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def staging(self) -> TableRef:
        """Where candidate partitions wait for their audit."""
        return TableRef("staging", self.name)

    @property
    def gold(self) -> TableRef:
        """What analysts query."""
        return TableRef("gold", self.name)


def _ledger(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable, rows: list[dict]
) -> None:
    """Append ledger events (one per date) in one commit."""
    at = datetime.now(UTC).replace(tzinfo=None)
    records = [
        {
            "table": table.name,
            "business_date": row["business_date"],
            "event": row["event"],
            "staged_version": row.get("staged_version"),
            "passed": row.get("passed"),
            "rules_failed": row.get("rules_failed"),
            "gold_version": row.get("gold_version"),
            "run_id": row.get("run_id"),
            "at": at,
        }
        for row in rows
    ]
    if records:
        lakehouse.write_rows(spark, records, _LEDGER_SCHEMA, WAP_LEDGER, partitioned=False)


def record_validations(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: TableRef,
    reports: dict[date, ValidationReport],
    table_version: int,
    run_id: str,
) -> None:
    """Append every rule's verdict per date, with offending keys, to ``ops.validation_results``.

    One commit for all the dates of a run.
    """
    at = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "suite": report.suite,
            "table": table.qualified,
            "business_date": business_date,
            "table_version": table_version,
            "rule": r.name,
            "severity": r.severity,
            "success": r.success,
            "rows_checked": r.element_count,
            "unexpected_count": r.unexpected_count,
            "offending_keys": json.dumps(r.offending_keys, default=str)
            if r.offending_keys
            else None,
            "observed_value": None if r.observed_value is None else str(r.observed_value),
            "run_id": run_id,
            "at": at,
        }
        for business_date, report in sorted(reports.items())
        for r in report.results
    ]
    if rows:
        lakehouse.write_rows(spark, rows, _RESULTS_SCHEMA, VALIDATION_RESULTS)


def stage(
    lakehouse: LakehouseResource, candidate: DataFrame, table: GoldTable, business_date: date
) -> int:
    """Write the candidate partition to staging once; return the staged Delta version."""
    return stage_dates(lakehouse, candidate, table, [business_date])


def stage_dates(
    lakehouse: LakehouseResource, candidate: DataFrame, table: GoldTable, business_dates: list[date]
) -> int:
    """Write the candidate partitions of a run's dates to staging in one commit; its version."""
    return lakehouse.write_dates(candidate, table.staging, business_dates).version


def audit(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: GoldTable,
    business_date: date,
    staged_version: int,
    suite: Suite,
    run_id: str,
) -> ValidationReport:
    """Validate the staged partition as of ``staged_version`` and record the verdict."""
    return audit_dates(
        lakehouse, spark, table, [business_date], staged_version, lambda _: suite, run_id
    )[business_date]


def audit_dates(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: GoldTable,
    business_dates: list[date],
    staged_version: int,
    suite_for: Callable[[date], Suite],
    run_id: str,
) -> dict[date, ValidationReport]:
    """Validate each staged date as of ``staged_version``; record every verdict in one commit.

    Returns each date's report: a date that fails is refused at publish, the others are not held
    back by it.
    """
    staged = lakehouse.read_dates(spark, table.staging, business_dates, staged_version)
    reports = validate_dates(staged, suite_for, business_dates, lakehouse.data_docs_dir)
    record_validations(lakehouse, spark, table.staging, reports, staged_version, run_id)
    _ledger(
        lakehouse,
        spark,
        table,
        [
            {
                "business_date": day,
                "event": "audited",
                "staged_version": staged_version,
                "passed": report.passed,
                "rules_failed": ",".join(r.name for r in report.results if not r.success) or None,
                "run_id": run_id,
            }
            for day, report in sorted(reports.items())
        ],
    )
    return reports


def latest_audits(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable, business_dates: list[date]
) -> dict[date, tuple[int, bool]]:
    """``{date: (staged_version, passed)}`` of each date's latest audit (never audited: absent).

    The latest is the last recorded (then the highest staged version); the ledger is small and
    read without a Spark job on a local lakehouse.
    """
    rows = lakehouse.read_rows(
        spark,
        WAP_LEDGER,
        ["business_date", "staged_version", "passed", "at"],
        equals={"table": table.name, "event": "audited"},
        within={"business_date": sorted(set(business_dates))},
    )
    latest: dict[date, dict] = {}
    for row in rows:
        key = (row["at"], row["staged_version"])
        mine = latest.get(row["business_date"])
        if mine is None or key > (mine["at"], mine["staged_version"]):
            latest[row["business_date"]] = row
    return {day: (int(row["staged_version"]), bool(row["passed"])) for day, row in latest.items()}


def latest_audit(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable, business_date: date
) -> tuple[int, bool] | None:
    """``(staged_version, passed)`` of the latest audit of a date, or None if never audited."""
    return latest_audits(lakehouse, spark, table, [business_date]).get(business_date)


def published_staged_versions(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable, business_dates: list[date]
) -> dict[date, int]:
    """``{date: staged_version}`` of each date's latest publish (never published: absent)."""
    rows = lakehouse.read_rows(
        spark,
        WAP_LEDGER,
        ["business_date", "staged_version", "at"],
        equals={"table": table.name, "event": "published"},
        within={"business_date": sorted(set(business_dates))},
    )
    latest: dict[date, tuple] = {}
    for row in rows:
        key = (row["at"], row["staged_version"])
        if row["business_date"] not in latest or key > latest[row["business_date"]]:
            latest[row["business_date"]] = key
    return {day: int(key[1]) for day, key in latest.items()}


def _read_staged(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: GoldTable,
    by_version: dict[int, list[date]],
) -> DataFrame | None:
    # Dates audited in different runs come from different staged versions.
    staged = None
    for version, days in sorted(by_version.items()):
        part = lakehouse.read_dates(spark, table.staging, days, version)
        staged = part if staged is None else staged.unionByName(part, allowMissingColumns=True)
    return staged


def read_published_staged(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable, business_dates: list[date]
) -> DataFrame | None:
    """The staged rows each date's latest publish took, as audited: the model's output before
    any person's decision was applied. None when none of the dates was published."""
    by_version: dict[int, list[date]] = {}
    for day, version in published_staged_versions(lakehouse, spark, table, business_dates).items():
        by_version.setdefault(version, []).append(day)
    return _read_staged(lakehouse, spark, table, by_version)


def _ensure_gold(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable, schema
) -> None:
    if lakehouse.exists(spark, table.gold):
        return
    # Constraints go on before the first row, so no write can ever slip past them.
    fields = [
        StructField(f.name, f.dataType, nullable=f.name not in table.not_null)
        for f in schema.fields
    ]
    # The CHECK constraints are table properties of the creating commit, as ``ADD CONSTRAINT``
    # stores them (``delta.constraints.<name>``; Delta raises the writer protocol for them): one
    # commit, where a commit and a data check per ``ALTER TABLE … ADD CONSTRAINT`` cost about
    # half a second each, for an empty table that has nothing to check.
    builder = (
        DeltaTable.createIfNotExists(spark)
        .location(lakehouse.path(table.gold))
        .addColumns(StructType(fields))
        .partitionedBy("business_date")
    )
    for name, expression in table.checks:
        builder = builder.property(f"delta.constraints.{name.lower()}", expression)
    builder.execute()
    lakehouse.register(spark, table.gold)


def record_lost_publishes(
    lakehouse: LakehouseResource, spark: SparkSession, table: GoldTable
) -> list[int]:
    """Append the ledger's ``published`` rows of gold commits that have none; their versions.

    A publish is two commits: gold's, then the ledger's. A process killed between them leaves a
    gold version that passed its audit (the commit's ``userMetadata`` names each date's staged
    version) but is missing from ``ops.wap_ledger``; the next publish of the table records it
    first (``run_id`` is the crashed run's). Looks at gold's last 50 commits.
    """
    if not lakehouse.exists(spark, table.gold):
        return []
    made = {}
    for version, note in commit_notes(spark, lakehouse.path(table.gold)):
        if note and note.startswith("{"):
            parsed = json.loads(note)
            if PUBLISH_NOTE in parsed:
                made[version] = parsed
    if not made:
        return []
    recorded = {
        row["gold_version"]
        for row in lakehouse.read_rows(
            spark,
            WAP_LEDGER,
            ["gold_version"],
            equals={"table": table.name, "event": "published"},
            within={"gold_version": sorted(made)},
        )
    }
    lost = sorted(set(made) - recorded)
    _ledger(
        lakehouse,
        spark,
        table,
        [
            {
                "business_date": date.fromisoformat(day),
                "event": "published",
                "staged_version": staged_version,
                "passed": True,
                "gold_version": version,
                "run_id": made[version]["run_id"],
            }
            for version in lost
            for day, staged_version in sorted(made[version][PUBLISH_NOTE].items())
        ],
    )
    return lost


def publish(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: GoldTable,
    business_date: date,
    run_id: str,
) -> tuple[int, int]:
    """Publish the latest audited staging version of a date to gold, if its audit passed.

    Returns ``(staged_version, gold_version)``. Raises ``PublishRefusedError`` otherwise.
    """
    done = publish_dates(lakehouse, spark, table, [business_date], run_id)
    if done.refused:
        raise PublishRefusedError(done.refused[business_date])
    return done.staged_versions[business_date.isoformat()], done.gold_version


@dataclass
class Published:
    """What publishing a run's dates did.

    The staged version published per date, rows written, the gold version of the commit, and
    each refused date with the reason (its audit failed or never ran).
    """

    staged_versions: dict[str, int]
    rows: int
    gold_version: int | None
    refused: dict[date, str] = field(default_factory=dict)

    @property
    def published_dates(self) -> list[date]:
        """The dates whose partition reached gold, oldest first."""
        return sorted(date.fromisoformat(d) for d in self.staged_versions)


def publish_dates(
    lakehouse: LakehouseResource,
    spark: SparkSession,
    table: GoldTable,
    business_dates: list[date],
    run_id: str,
    overlay: Callable[[DataFrame], DataFrame] | None = None,
) -> Published:
    """Publish every date of the run whose latest audit passed, in one gold commit.

    A date whose audit failed (or never ran) is refused and left as it was in gold; the others
    are not held back by it. The caller reports the refused dates as failed. ``overlay`` is
    applied to the audited rows on their way to gold: the analysts' decisions on top of model
    output (``infra/review.py``); it changes values, never which rows are published.
    """
    verdicts = latest_audits(lakehouse, spark, table, business_dates)
    done = Published({}, 0, None)
    passing: dict[int, list[date]] = {}
    for day in sorted(business_dates):
        verdict = verdicts.get(day)
        if verdict is None:
            done.refused[day] = f"{table.staging.qualified} {day} was never audited"
        elif not verdict[1]:
            done.refused[day] = (
                f"{table.staging.qualified} {day} version {verdict[0]} failed its audit; "
                f"gold.{table.name} is unchanged for that date"
            )
        else:
            passing.setdefault(verdict[0], []).append(day)
    if not passing:
        return done
    staged = _read_staged(lakehouse, spark, table, passing)
    if overlay is not None:
        staged = staged.transform(overlay)
    _ensure_gold(lakehouse, spark, table, staged.schema)
    record_lost_publishes(lakehouse, spark, table)
    published = [day for days in passing.values() for day in days]
    staged_by_day = {day.isoformat(): v for v, days in passing.items() for day in days}
    # The gold commit names what it published, so a crash between it and the ledger's append
    # loses no record (record_lost_publishes).
    note = json.dumps(
        {
            PUBLISH_NOTE: staged_by_day,
            "run_id": run_id,
            "token": uuid.uuid4().hex,
        },
        sort_keys=True,
    )
    commit = lakehouse.write_dates(staged, table.gold, published, user_metadata=note)
    done.rows, done.gold_version = commit.rows, commit.version
    for version, days in passing.items():
        for day in days:
            done.staged_versions[day.isoformat()] = version
    _ledger(
        lakehouse,
        spark,
        table,
        [
            {
                "business_date": day,
                "event": "published",
                "staged_version": done.staged_versions[day.isoformat()],
                "passed": True,
                "gold_version": commit.version,
                "run_id": run_id,
            }
            for day in sorted(published)
        ],
    )
    return done
