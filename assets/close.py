"""The nightly close: HRIS history, the reconciliations, and their gold tables through the gate.

Assets stay thin: the rules are in ``transforms/recon/`` (one module per reconciliation) and
``transforms/hris.py``; the suites in ``expectations/reconciliation.py``. Besides silver, the close
reads the published invoice documents and contract terms (``gold.invoice_documents``,
``gold.contract_terms``: only what passed their audits).
"""

from dataclasses import dataclass
from datetime import date
from functools import partial

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from assets.publishing import publish_events, publish_step, refused_failure
from expectations import reconciliation as suites
from expectations.runner import ValidationReport
from infra import versions, wap
from infra.checks import (
    markdown_preview,
    suite_check_results,
    suite_check_specs,
    validation_metadata,
)
from infra.lakehouse import LakehouseResource, TableRef
from infra.spark import SparkResource, in_threads
from transforms import contracts as c
from transforms.frames import local_frame
from transforms.hris import hris_history_dates
from transforms.recon.ap import ap_control_balances_dates
from transforms.recon.close import (
    INPUT_LOOKBACK_DAYS,
    CloseInputs,
    materialized,
    run_close_dates,
    windowed,
)
from transforms.recon.contract_terms import CONTRACT_SCHEMA
from transforms.recon.documents import DOCUMENT_SCHEMA
from transforms.recon.summary import close_summary_dates

HRIS_HISTORY = TableRef("silver", "hris_history")
INVOICE_DOCUMENTS = TableRef("gold", "invoice_documents")
DOCUMENTS_STEP = "gold_invoice_documents"
CONTRACT_TERMS = TableRef("gold", "contract_terms")
CONTRACTS_STEP = "gold_contract_terms"
MATCHES = wap.GoldTable(
    "recon_matches",
    not_null=suites.MATCHES_NOT_NULL,
    checks=tuple(suites.MATCHES_CONSTRAINTS.items()),
)
EXCEPTIONS = wap.GoldTable(
    "recon_exceptions",
    not_null=suites.EXCEPTIONS_NOT_NULL,
    checks=tuple(suites.EXCEPTIONS_CONSTRAINTS.items()),
)
SUMMARY = wap.GoldTable(
    "close_summary",
    not_null=suites.SUMMARY_NOT_NULL,
    checks=tuple(suites.SUMMARY_CONSTRAINTS.items()),
)
# (gold table, suite factory) in the order they are staged: the summary reads the other two.
GATED = (
    (MATCHES, suites.recon_matches_suite),
    (EXCEPTIONS, suites.recon_exceptions_suite),
    (SUMMARY, suites.close_summary_suite),
)
_ANY_DAY = date(2000, 1, 1)
INPUT_SOURCES = (
    c.FX_RATES,
    c.BANK_STATEMENT_LINES,
    c.GL_JOURNAL_LINES,
    c.AP_INVOICES,
    c.AP_PAYMENTS,
    c.PAYROLL_REGISTER,
    c.HRIS_ROSTER,
    c.EXPENSE_LINES,
)

# CloseInputs field -> the silver source it reads.
_INPUT_FIELDS = {
    "bank": c.BANK_STATEMENT_LINES,
    "gl": c.GL_JOURNAL_LINES,
    "ap_invoices": c.AP_INVOICES,
    "ap_payments": c.AP_PAYMENTS,
    "payroll": c.PAYROLL_REGISTER,
    "roster": c.HRIS_ROSTER,
    "expense_lines": c.EXPENSE_LINES,
    "fx_rates": c.FX_RATES,
}
# The AP control balances are cumulative: every date up to D of these.
_CUMULATIVE = {"gl", "ap_invoices", "ap_payments"}
HISTORY_STEP = versions.Step(
    "silver_hris_history", __name__, (versions.Upstream("silver_hris_roster", None),)
)
# The close of D reads each source over its lookback window (and the AP control inputs in full),
# and the documents published over theirs.
CLOSE_STEP = versions.Step(
    "staging_reconciliation",
    __name__,
    (
        *(
            versions.Upstream(
                f"silver_{source.name}",
                None if field in _CUMULATIVE else INPUT_LOOKBACK_DAYS[field],
            )
            for field, source in _INPUT_FIELDS.items()
        ),
        versions.Upstream(DOCUMENTS_STEP, INPUT_LOOKBACK_DAYS["invoice_documents"]),
        versions.Upstream(CONTRACTS_STEP, INPUT_LOOKBACK_DAYS["contract_terms"]),
    ),
)
PUBLISH_STEP = publish_step("gold_reconciliation", "staging_reconciliation")


def _silver(lakehouse: LakehouseResource, session: SparkSession, contract: c.SourceContract):
    return lakehouse.read(session, TableRef("silver", contract.name))


def _published(
    lakehouse: LakehouseResource, session: SparkSession, table: TableRef, schema: str
) -> DataFrame:
    """What the close reads of a published document table (``schema``'s columns); none before
    anything was ever published to it."""
    if not lakehouse.exists(session, table):
        return local_frame(session, [], schema)
    return lakehouse.read(session, table).select(*[c.split()[0] for c in schema.split(", ")])


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    code_version=HISTORY_STEP.code_version,
    deps=[AssetKey("silver_hris_roster")],
    group_name="silver",
    kinds={"spark", "delta"},
    description="HRIS history as known on the business date (SCD type 2 from the daily roster "
    "snapshots): one row per employee version with valid_from / valid_to / is_current, so "
    "'who was active, in which cost centre, on which date' is one query. No names or e-mails.",
)
def silver_hris_history(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    plan = versions.plan_run(context, spark.get_session, lakehouse, HISTORY_STEP)
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    rows = build_hris_history_dates(spark.session, lakehouse, plan.to_run)
    versions.record(spark.session, lakehouse, plan, plan.to_run, context.run_id)
    yield MaterializeResult(
        metadata={
            **plan.metadata(),
            "versions": MetadataValue.json({d.isoformat(): n for d, n in rows.items()}),
            "table": HRIS_HISTORY.qualified,
        }
    )


def build_hris_history_dates(
    session: SparkSession, lakehouse: LakehouseResource, days: list[date]
) -> dict[date, int]:
    """Write the HRIS history as known on each date (one commit); versions written per date."""
    snapshots = _silver(lakehouse, session, c.HRIS_ROSTER)
    history = hris_history_dates(snapshots, days)
    commit = lakehouse.write_dates(history, HRIS_HISTORY, days)
    counts = (
        lakehouse.read_dates(session, HRIS_HISTORY, days, commit.version)
        .groupBy("business_date")
        .count()
        .collect()
    )
    return {day: next((r[1] for r in counts if r[0] == day), 0) for day in days}


def build_hris_history_day(session: SparkSession, lakehouse: LakehouseResource, day: date) -> int:
    """Write the HRIS history as known on ``day``; return the number of versions written."""
    return build_hris_history_dates(session, lakehouse, [day])[day]


@dataclass
class StagedClose:
    """A run's staged versions per gold table, each date's audit reports, open exceptions."""

    versions: dict[str, int]
    reports: dict[str, dict[date, ValidationReport]]
    exception_counts: dict[str, int]


def stage_close_dates(
    session: SparkSession, lakehouse: LakehouseResource, days: list[date], run_id: str
) -> StagedClose:
    """Reconcile the run's dates in one plan, stage matches and exceptions, then the summaries.

    Each table is staged once for the run's dates (one commit) and audited per date.
    """
    inputs = CloseInputs(
        bank=_silver(lakehouse, session, c.BANK_STATEMENT_LINES),
        gl=_silver(lakehouse, session, c.GL_JOURNAL_LINES),
        ap_invoices=_silver(lakehouse, session, c.AP_INVOICES),
        ap_payments=_silver(lakehouse, session, c.AP_PAYMENTS),
        payroll=_silver(lakehouse, session, c.PAYROLL_REGISTER),
        roster=_silver(lakehouse, session, c.HRIS_ROSTER),
        expense_lines=_silver(lakehouse, session, c.EXPENSE_LINES),
        fx_rates=_silver(lakehouse, session, c.FX_RATES),
        invoice_documents=_published(lakehouse, session, INVOICE_DOCUMENTS, DOCUMENT_SCHEMA),
        contract_terms=_published(lakehouse, session, CONTRACT_TERMS, CONTRACT_SCHEMA),
    )

    # The dates the close reads are materialized once, each reconciliation is computed once, and
    # everything after reads those results (small plans, no repeated scans of the silver tables).
    def materialize(df):
        return df.localCheckpoint()

    # Independent actions (reconciliations, one table's staging and audit beside another's) run
    # in threads: this step is the close's critical path, and alone on the machine.
    run = in_threads()
    # What the closes of all the run's dates read, materialized once (not once per date).
    window = materialized(windowed(inputs, max(days), first_day=min(days)), materialize, run)
    closed = run_close_dates(window, days, materialize=materialize, run=run)
    # Balances run over every date to D (not the window): the subledger and the control account
    # are cumulative.
    matches_version, exceptions_version, balances = run(
        [
            partial(wap.stage_dates, lakehouse, closed.matches, MATCHES, days),
            partial(wap.stage_dates, lakehouse, closed.exceptions, EXCEPTIONS, days),
            lambda: materialize(
                ap_control_balances_dates(inputs.ap_invoices, inputs.ap_payments, inputs.gl, days)
            ),
        ]
    )
    versions = {MATCHES.name: matches_version, EXCEPTIONS.name: exceptions_version}
    # The summary reads each of these several times (and the open exceptions are counted below):
    # materialized, each table is scanned once.
    staged_matches, staged_exceptions = run(
        [
            lambda: materialize(
                lakehouse.read_dates(session, MATCHES.staging, days, versions[MATCHES.name])
            ),
            lambda: materialize(
                lakehouse.read_dates(session, EXCEPTIONS.staging, days, versions[EXCEPTIONS.name])
            ),
        ]
    )
    summaries = close_summary_dates(staged_exceptions, staged_matches, balances, days)
    versions[SUMMARY.name] = wap.stage_dates(lakehouse, summaries, SUMMARY, days)
    audits = run(
        [
            partial(
                wap.audit_dates,
                lakehouse,
                session,
                table,
                days,
                versions[table.name],
                suite,
                run_id,
            )
            for table, suite in GATED
        ]
    )
    reports = {table.name: report for (table, _), report in zip(GATED, audits, strict=True)}
    counts = (
        staged_exceptions.where(F.col("status") == "open")
        .groupBy("exception_type")
        .count()
        .collect()
    )
    return StagedClose(versions, reports, {r[0]: r[1] for r in counts})


def _staging_key(table: wap.GoldTable) -> str:
    return f"staging_{table.name}"


@multi_asset(
    specs=[
        AssetSpec(
            _staging_key(table),
            code_version=CLOSE_STEP.code_version,
            deps=[
                *(AssetKey(f"silver_{s.name}") for s in INPUT_SOURCES),
                AssetKey(DOCUMENTS_STEP),
                AssetKey(CONTRACTS_STEP),
            ],
            group_name="staging",
            kinds={"spark", "delta"},
            description=f"Candidate partition of gold.{table.name}, audited by its suite before "
            "anything reaches gold.",
        )
        for table, _ in GATED
    ],
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    check_specs=[
        spec
        for table, suite in GATED
        for spec in suite_check_specs(
            _staging_key(table), suites.rule_specs(suite(_ANY_DAY)), gated_per_date=True
        )
    ],
)
def staging_reconciliation(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    """Bank ↔ GL, AP ↔ GL, invoice documents ↔ AP, contract terms ↔ AP, payroll ↔ HRIS and
    expense policy for each date of the run."""
    plan = versions.plan_run(context, spark.get_session, lakehouse, CLOSE_STEP)
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    session = spark.session
    days = plan.to_run
    done = stage_close_dates(session, lakehouse, days, context.run_id)
    # A date is done when all three of its tables passed: they are published together.
    passed = {day: all(done.reports[table.name][day].passed for table, _ in GATED) for day in days}
    versions.record(
        session,
        lakehouse,
        plan,
        [d for d, ok in passed.items() if ok],
        context.run_id,
        [d for d, ok in passed.items() if not ok],
    )
    for table, suite in GATED:
        by_date = done.reports[table.name]
        reports = [r for _, r in sorted(by_date.items())]
        metadata = {
            **plan.metadata(),
            "rows": sum(r.rows for r in reports),
            "staged_delta_version": done.versions[table.name],
            "table": table.staging.qualified,
            **validation_metadata(reports),
        }
        if table is EXCEPTIONS:
            metadata["open_exceptions_by_type"] = MetadataValue.json(done.exception_counts)
            staged = lakehouse.read_partition(
                session, table.staging, max(days), done.versions[table.name]
            )
            metadata["preview"] = MetadataValue.md(
                markdown_preview(
                    staged.select(
                        "exception_type",
                        "legal_entity",
                        "status",
                        "age_days",
                        "amount",
                        "currency",
                        "detail",
                    )
                )
            )
        yield MaterializeResult(asset_key=_staging_key(table), metadata=metadata)
        yield from suite_check_results(
            {day: (r, done.versions[table.name]) for day, r in by_date.items()},
            _staging_key(table),
            [name for name, _, _ in suites.rule_specs(suite(_ANY_DAY))],
        )


@multi_asset(
    specs=[
        AssetSpec(
            f"gold_{table.name}",
            code_version=PUBLISH_STEP.code_version,
            # One step publishes the three tables: each waits for the whole staged close (and
            # Dagster refuses a UI backfill of a multi-asset whose keys have different parents).
            deps=[AssetKey(_staging_key(t)) for t, _ in GATED],
            group_name="gold",
            kinds={"spark", "delta"},
            description={
                MATCHES.name: "Matched groups per reconciliation and night, with the rule "
                "that matched them and the records on each side.",
                EXCEPTIONS.name: "One row per reconciliation exception per business date: type, "
                "entity, amounts, the records involved, status (open / closed today), age in "
                "days, and an analyst sentence.",
                SUMMARY.name: "Per legal entity, reconciliation and date: records matched and "
                "unmatched, match rate, open exceptions by type and age, AP control variance.",
            }[table.name],
        )
        for table, _ in GATED
    ],
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
)
def gold_reconciliation(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    """Publish each audited staging partition of the close's gold tables.

    A date refused for one table is refused for all three (they are read together), so gold never
    holds matches without the exceptions and summary of the same close.
    """
    plan = versions.plan_run(context, spark.get_session, lakehouse, PUBLISH_STEP)
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    days = plan.to_run
    failing = {day: [] for day in days}
    for table, _ in GATED:
        verdicts = wap.latest_audits(lakehouse, spark.session, table, days)
        for day in days:
            if not verdicts.get(day, (0, False))[1]:
                failing[day].append(table.name)
    whole = [day for day in days if not failing[day]]
    refused = {
        day: f"the close of {day} did not pass its audit ({', '.join(names)}); gold is "
        "unchanged for that date"
        for day, names in failing.items()
        if names
    }
    # The three tables' commits are independent: written at once, reported in order.
    dones = [wap.Published({}, 0, None) for _ in GATED]
    if whole:
        session = spark.session
        dones = in_threads()(
            [
                partial(wap.publish_dates, lakehouse, session, table, whole, context.run_id)
                for table, _ in GATED
            ]
        )
    published = []
    for (table, _), done in zip(GATED, dones, strict=True):
        done.refused = refused
        published.append(set(done.published_dates))
        yield from publish_events(done, table, lakehouse, f"gold_{table.name}", plan)
    # Recorded once all three tables hold the date.
    versions.record(
        spark.session, lakehouse, plan, sorted(set.intersection(*published)), context.run_id
    )
    if refused:
        raise refused_failure(refused)
