"""Invoice documents: landed PDFs and scans -> bronze -> silver pages -> staging -> gold.

Bronze keeps each file as landed (bytes, SHA-256, page count, name, size); silver reads each
document that is not a repeat of an earlier one into its pages (text, ``text_layer``/``ocr``,
OCR confidence), inside Spark tasks. A file that cannot be read goes to ``silver.quarantine``
with its reason. The ``extract`` task then reads each document's fields (a repeat is read from
its first landing's pages), which are staged, audited by ``expectations/invoice_documents.py``
and published to ``gold.invoice_documents``. The transforms are ``transforms/documents.py`` and
``transforms/invoice_documents.py``; the readers and the extractor ``documents/``.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from assets.publishing import publish_asset
from assets.sources import roster_names_on
from documents.extract import MODEL_ID as INVOICE_RULES_MODEL_ID
from enrichment.prompts import INVOICE_EXTRACT_TASK
from enrichment.providers.base import EMBEDDED
from expectations.invoice_documents import (
    CONSTRAINTS,
    NOT_NULL_COLUMNS,
    all_rule_names,
    gold_invoice_documents_suite,
)
from expectations.runner import ValidationReport
from infra import versions, wap
from infra.checks import (
    markdown_preview,
    suite_check_results,
    suite_check_specs,
    validation_metadata,
)
from infra.enrichment import EnrichmentResource, enrichment_rollup
from infra.lakehouse import LakehouseResource, TableRef
from infra.review import REVIEWED_TABLES
from infra.spark import SparkResource
from transforms.documents import (
    SOURCE,
    quarantined_documents,
    read_document_pages,
    silver_pages,
    to_bronze_documents,
    with_first_landing,
)
from transforms.invoice_documents import pages_per_document, to_gold_invoice_documents

BRONZE = TableRef("bronze", SOURCE)
PAGES = TableRef("silver", "invoice_document_pages")
QUARANTINE = TableRef("silver", "quarantine")
BRONZE_STEP = versions.Step(f"bronze_{SOURCE}", __name__)
# A date's pages depend on its bronze and on every earlier date's (a repeat is not read again).
PAGES_STEP = versions.Step(
    "silver_invoice_document_pages", __name__, (versions.Upstream(f"bronze_{SOURCE}", None),)
)
GOLD = wap.GoldTable(
    "invoice_documents", not_null=NOT_NULL_COLUMNS, checks=tuple(CONSTRAINTS.items())
)
RULES = all_rule_names()
# A repeat is read from its first landing's pages (any earlier date); names from the roster.
STAGING_STEP = versions.Step(
    "staging_invoice_documents",
    __name__,
    (
        versions.Upstream("silver_invoice_document_pages", None),
        versions.Upstream("silver_hris_roster"),
    ),
)
PREVIEW_COLUMNS = ["file_name", "invoice_number", "vendor_name", "total", "currency",
                   "net_plus_tax_is_total", "duplicate_of_file", "source"]  # fmt: skip


def ingest_documents_dates(
    session: SparkSession, lakehouse: LakehouseResource, days: list[date]
) -> dict[date, dict[str, int]]:
    """Land a run's dates of documents in bronze in one commit; files and bytes per date."""
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    files = lakehouse.read_landed_documents(session, SOURCE, days)
    commit = lakehouse.write_dates(files.transform(to_bronze_documents(ingested_at)), BRONZE, days)
    counts = (
        lakehouse.read_dates(session, BRONZE, days, commit.version)
        .groupBy("business_date")
        .agg(
            F.count(F.lit(1)).alias("files"),
            F.sum("size_bytes").alias("bytes"),
            F.sum("pages").alias("pages"),
            F.sum(F.col("read_error").isNotNull().cast("int")).alias("unreadable"),
        )
        .collect()
    )
    out = {day: {"files": 0, "bytes": 0, "pages": 0, "unreadable": 0} for day in days}
    for row in counts:
        out[row["business_date"]] = {k: int(row[k] or 0) for k in out[days[0]]}
    return out


def documents_with_first_landing(
    session: SparkSession, lakehouse: LakehouseResource, days: list[date]
) -> DataFrame:
    """Bronze documents of ``days``, each with where its content first landed (null: here)."""
    every = lakehouse.read(session, BRONZE).where(F.col("business_date") <= F.lit(max(days)))
    hashes = every.select("business_date", "file_name", "sha256")
    firsts = hashes.transform(with_first_landing()).where(
        F.col("business_date").isin([F.lit(d) for d in days])
    )
    return lakehouse.read_dates(session, BRONZE, days).join(
        firsts, ["business_date", "file_name", "sha256"]
    )


@dataclass
class PagesWritten:
    """What a run's silver step for documents wrote, per date."""

    documents: dict[date, int]
    read: dict[date, int]
    repeats: dict[date, int]
    quarantined: dict[date, int]
    pages: dict[date, dict[str, int]]
    version: int

    def conserved(self, day: date) -> bool:
        """Every bronze document was read, recognised as a repeat or quarantined."""
        return self.documents[day] == self.read[day] + self.repeats[day] + self.quarantined[day]


def read_pages_dates(
    session: SparkSession, lakehouse: LakehouseResource, days: list[date]
) -> PagesWritten:
    """Read a run's new documents into ``silver.invoice_document_pages``; quarantine the bad."""
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    documents = documents_with_first_landing(session, lakehouse, days).cache()
    originals = documents.where(F.col("duplicate_of_file").isNull())
    tasks = session.sparkContext.defaultParallelism
    pages = originals.transform(read_document_pages(tasks)).cache()
    version = lakehouse.write_dates(pages.transform(silver_pages), PAGES, days).version
    lakehouse.write_dates(
        pages.transform(quarantined_documents(ingested_at)), QUARANTINE, days, {"source": SOURCE}
    )
    per_doc = (
        pages.groupBy("business_date", "file_name")
        .agg(F.max(F.col("read_error").isNotNull().cast("int")).alias("bad"))
        .groupBy("business_date")
        .agg(F.count(F.lit(1)).alias("docs"), F.sum("bad").alias("bad"))
        .collect()
    )
    by_method = pages.where(F.col("read_error").isNull()).groupBy("business_date", "method")
    methods = by_method.count().collect()
    docs = documents.groupBy("business_date").agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.col("duplicate_of_file").isNotNull().cast("int")).alias("repeats"),
    )
    doc_rows = docs.collect()
    pages.unpersist()
    documents.unpersist()
    out = PagesWritten(
        {d: 0 for d in days},
        {d: 0 for d in days},
        {d: 0 for d in days},
        {d: 0 for d in days},
        {d: {} for d in days},
        version,
    )
    for row in doc_rows:
        out.documents[row["business_date"]] = row["n"]
        out.repeats[row["business_date"]] = row["repeats"]
    for row in per_doc:
        out.quarantined[row["business_date"]] = int(row["bad"] or 0)
        out.read[row["business_date"]] = row["docs"] - int(row["bad"] or 0)
    for row in methods:
        out.pages[row["business_date"]][row["method"]] = row["count"]
    return out


@asset(
    name=f"bronze_{SOURCE}",
    code_version=BRONZE_STEP.code_version,
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    group_name="bronze",
    kinds={"spark", "delta", "pdf"},
    description="Vendor invoice documents as landed (PDF, PNG/JPEG/TIFF scans): one row per file "
    "with its bytes, SHA-256, page count, name and size; read_error when it cannot be opened. "
    "Partitioned by business_date, the landing folder's.",
)
def bronze_invoice_documents(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    days = sorted(date.fromisoformat(key) for key in context.partition_keys)
    landing = versions.landed_fingerprints(spark.session, lakehouse, SOURCE, days)
    plan = versions.plan_run(context, spark.session, lakehouse, BRONZE_STEP, landing=landing)
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    counts = ingest_documents_dates(spark.session, lakehouse, plan.to_run)
    versions.record(spark.session, lakehouse, plan, plan.to_run, context.run_id)
    yield MaterializeResult(
        metadata={
            **plan.metadata(),
            "files": sum(c["files"] for c in counts.values()),
            "pages": sum(c["pages"] for c in counts.values()),
            "unreadable_files": sum(c["unreadable"] for c in counts.values()),
            "by_date": MetadataValue.json({d.isoformat(): c for d, c in counts.items()}),
            "table": BRONZE.qualified,
            "location": lakehouse.path(BRONZE),
        }
    )


@asset(
    name="silver_invoice_document_pages",
    code_version=PAGES_STEP.code_version,
    deps=[AssetKey(f"bronze_{SOURCE}")],
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    group_name="silver",
    kinds={"spark", "delta", "tesseract"},
    check_specs=[
        AssetCheckSpec(
            "documents_conserved",
            asset="silver_invoice_document_pages",
            description="bronze documents = documents read + repeats of an earlier document + "
            "quarantined documents: nothing dropped.",
            blocking=True,
        )
    ],
    description="One row per page of each invoice document first landed on business_date: its "
    "text, how it was read (text_layer, or ocr for a page without one) and Tesseract's mean "
    "word confidence. A repeat of an earlier document (same SHA-256) is not read again; a file "
    "that cannot be read is in silver.quarantine (UNREADABLE_DOCUMENT).",
)
def silver_invoice_document_pages(
    context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource
):
    plan = versions.plan_run(context, spark.session, lakehouse, PAGES_STEP)
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    written = read_pages_dates(spark.session, lakehouse, plan.to_run)
    done = [d for d in plan.to_run if written.conserved(d)]
    versions.record(
        spark.session, lakehouse, plan, done, context.run_id, set(plan.to_run) - set(done)
    )
    yield MaterializeResult(
        metadata={
            **plan.metadata(),
            "documents": sum(written.documents.values()),
            "documents_read": sum(written.read.values()),
            "repeated_documents": sum(written.repeats.values()),
            "quarantined_documents": sum(written.quarantined.values()),
            "pages_by_method": MetadataValue.json(
                {d.isoformat(): m for d, m in written.pages.items()}
            ),
            "delta_version": written.version,
            "table": PAGES.qualified,
        }
    )
    unbalanced = {
        d.isoformat(): {
            "bronze": written.documents[d],
            "read": written.read[d],
            "repeats": written.repeats[d],
            "quarantined": written.quarantined[d],
        }
        for d in plan.to_run
        if not written.conserved(d)
    }
    yield AssetCheckResult(
        asset_key="silver_invoice_document_pages",
        check_name="documents_conserved",
        passed=not unbalanced,
        metadata={"dates_not_conserved": MetadataValue.json(unbalanced)},
    )


def extraction_inputs(
    session: SparkSession, lakehouse: LakehouseResource, days: list[date]
) -> DataFrame:
    """The run's readable documents with their pages (a repeat: its first landing's pages)."""
    documents = (
        documents_with_first_landing(session, lakehouse, days)
        .where(F.col("read_error").isNull())
        .select(
            "business_date",
            "file_name",
            "sha256",
            "size_bytes",
            "duplicate_of_file",
            "duplicate_of_date",
        )
    )
    earlier = [r[0] for r in documents.select("duplicate_of_date").distinct().collect() if r[0]]
    pages = (
        lakehouse.read_dates(session, PAGES, [*days, *earlier])
        .transform(pages_per_document())
        .withColumnRenamed("business_date", "_read_date")
        .withColumnRenamed("file_name", "_read_file")
    )
    read_date = F.coalesce("duplicate_of_date", "business_date").alias("_read_date")
    read_file = F.coalesce("duplicate_of_file", "file_name").alias("_read_file")
    return (
        documents.select("*", read_date, read_file)
        .join(pages, ["_read_date", "_read_file"])
        .drop("_read_date", "_read_file")
    )


@dataclass
class StagedDocuments:
    """What a run's extraction and audit of invoice documents did."""

    staged_version: int
    reports: dict[date, ValidationReport]


def stage_and_audit_invoice_documents_dates(
    session: SparkSession,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
    days: list[date],
    run_id: str,
) -> StagedDocuments:
    """Extract a run's documents (one engine pass over all dates), stage them, audit each date."""
    documents = extraction_inputs(session, lakehouse, days).cache()
    names = {day: roster_names_on(lakehouse, session, day) for day in days}
    extracted = enrichment.extract_documents(
        lakehouse, documents, INVOICE_EXTRACT_TASK, run_id, names
    )
    candidate = extracted.transform(to_gold_invoice_documents(documents))
    staged_version = wap.stage_dates(lakehouse, candidate, GOLD, days)
    documents.unpersist()
    reports = wap.audit_dates(
        lakehouse,
        session,
        GOLD,
        days,
        staged_version,
        lambda _: gold_invoice_documents_suite(),
        run_id,
    )
    return StagedDocuments(staged_version, reports)


def extractor_description(enrichment: EnrichmentResource) -> str:
    """Who reads the documents: offline the layout rules (never the embedded classifier the other
    tasks fall back to), else the configured LLM."""
    if enrichment.provider_kind == EMBEDDED:
        return (
            f"embedded layout rules {INVOICE_RULES_MODEL_ID} (no OPENAI_API_KEY set: no LLM used)"
        )
    return enrichment.describe()


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=TRANSIENT_RETRY,
    code_version=STAGING_STEP.code_version,
    deps=[AssetKey("silver_invoice_document_pages"), AssetKey("silver_hris_roster")],
    group_name="staging",
    kinds={"spark", "delta", "openai"},
    check_specs=suite_check_specs("staging_invoice_documents", RULES, gated_per_date=True),
    pool="llm",
    description="Candidate gold partition of invoice documents: the extract task's fields "
    "(each with value, confidence, page, span and source: llm, cache or rule), line items, the "
    "arithmetic checks and provenance; a repeated document points at its first landing. "
    "Audited by the gold_invoice_documents suite before anything reaches gold.",
)
def staging_invoice_documents(
    context: AssetExecutionContext,
    spark: SparkResource,
    lakehouse: LakehouseResource,
    enrichment: EnrichmentResource,
):
    session = spark.session
    plan = versions.plan_run(
        context, session, lakehouse, STAGING_STEP, config=enrichment.version_config()
    )
    if not plan.to_run:
        yield from plan.unchanged_results(context)
        return
    context.log.info(f"extraction by {extractor_description(enrichment)}")
    done = stage_and_audit_invoice_documents_dates(
        session, lakehouse, enrichment, plan.to_run, context.run_id
    )
    staged = lakehouse.read_dates(session, GOLD.staging, plan.to_run, done.staged_version)
    versions.record_audited(
        session, lakehouse, plan, done.reports, context.run_id, enrichment.fell_back(staged)
    )
    reports = [report for _, report in sorted(done.reports.items())]
    checks = staged.groupBy("net_plus_tax_is_total").count().collect()
    yield MaterializeResult(
        metadata={
            **plan.metadata(),
            "rows": sum(rep.rows for rep in reports),
            "staged_delta_version": done.staged_version,
            "table": GOLD.staging.qualified,
            "enrichment_provider": extractor_description(enrichment),
            "net_plus_tax_is_total": MetadataValue.json({str(r[0]): r[1] for r in checks}),
            **enrichment_rollup(staged),
            **validation_metadata(reports),
            "preview": MetadataValue.md(markdown_preview(staged.select(*PREVIEW_COLUMNS))),
        }
    )
    yield from suite_check_results(
        {day: (report, done.staged_version) for day, report in done.reports.items()},
        "staging_invoice_documents",
        [name for name, _, _ in RULES],
    )


gold_invoice_documents = publish_asset(
    GOLD,
    staging_invoice_documents,
    "Published invoice documents: one row per readable document per business_date with its "
    "fields typed (vendor, tax id, invoice number, dates, currency, net, tax, total, PO), every "
    "field's confidence, page, span and source, line items, the arithmetic checks, the page and "
    "OCR facts, where a repeated document first landed, and provenance. An analyst's value "
    "for a field (make review) is published on top of the extraction's: in the field's column "
    "and its element of fields (source = human), named in reviewed_fields, checks recomputed.",
    reviewed=REVIEWED_TABLES["invoice_documents"],
)
