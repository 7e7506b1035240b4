"""Documents: landed PDFs and scans -> bronze -> silver pages -> staging -> gold, per feed.

Two feeds share one path (``DocumentFeed``): vendor invoices (``landing/invoice_documents`` ->
``gold.invoice_documents``) and contracts (``landing/contract_documents`` ->
``gold.contract_terms``). Bronze keeps each file as landed (bytes, SHA-256, page count, name,
size); silver reads each document that is not a repeat of an earlier one into its pages (text,
``text_layer``/``ocr``, OCR confidence), inside Spark tasks. A file that cannot be read goes to
``silver.quarantine`` with its reason. The ``extract`` task then reads each document's fields with
the feed's field spec (a repeat is read from its first landing's pages), which are staged, audited
by the feed's suite (``expectations/invoice_documents.py``, ``expectations/contract_terms.py``)
and published. The transforms are ``transforms/documents.py``, ``transforms/document_fields.py``
and each feed's gold shape; the readers and the extractors ``documents/``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.partitions import BACKFILL_POLICY, TRANSIENT_RETRY, daily_partitions
from assets.publishing import publish_asset
from assets.sources import roster_names_on_dates
from assets.staging import Staged, staged_gold_asset
from documents.contract_rules import MODEL_ID as CONTRACT_RULES_MODEL_ID
from documents.extract import MODEL_ID as INVOICE_RULES_MODEL_ID
from enrichment.models import TaskSpec
from enrichment.prompts import CONTRACT_EXTRACT_TASK, INVOICE_EXTRACT_TASK
from enrichment.providers.base import EMBEDDED
from expectations import contract_terms as contract_suite
from expectations import invoice_documents as invoice_suite
from expectations.suite import Suite
from infra import versions, wap
from infra.checks import markdown_preview
from infra.enrichment import EnrichmentResource, enrichment_rollup
from infra.lakehouse import LakehouseResource, TableRef
from infra.review import REVIEWED_TABLES
from infra.spark import SparkResource
from transforms.contract_documents import to_gold_contract_terms
from transforms.document_fields import pages_per_document
from transforms.documents import (
    quarantined_documents,
    read_document_pages,
    silver_pages,
    to_bronze_documents,
    with_first_landing,
)
from transforms.invoice_documents import to_gold_invoice_documents

QUARANTINE = TableRef("silver", "quarantine")


@dataclass(frozen=True)
class DocumentFeed:
    """One kind of landed document: where it lands, its bronze and pages tables, how it is read
    (the extract task and its offline rules) and the gold table it becomes."""

    source: str  # landing folder and bronze table: invoice_documents
    kind: str  # what one document is, for descriptions: invoice
    pages_table: str  # silver table of its pages: invoice_document_pages
    task: TaskSpec
    rules_model: str  # the embedded extractor's model id (offline)
    gold: wap.GoldTable
    to_gold: Callable[[DataFrame], Callable[[DataFrame], DataFrame]]
    suite: Callable[[], Suite]
    rules: Callable[[], list[tuple[str, str, str]]]  # the suite's (name, severity, description)

    @property
    def bronze(self) -> TableRef:
        """One row per landed file."""
        return TableRef("bronze", self.source)

    @property
    def pages(self) -> TableRef:
        """One row per page read."""
        return TableRef("silver", self.pages_table)

    @property
    def bronze_step(self) -> versions.Step:
        """The bronze step's version: the landing folder (``landed_fingerprints``) and code."""
        return versions.Step(f"bronze_{self.source}", __name__)

    @property
    def pages_step(self) -> versions.Step:
        """A date's pages depend on its bronze and every earlier date's (a repeat is not read
        again)."""
        return versions.Step(
            f"silver_{self.pages_table}",
            __name__,
            (versions.Upstream(f"bronze_{self.source}", None),),
        )

    @property
    def staging_step(self) -> versions.Step:
        """A repeat is read from its first landing's pages (any earlier date); names from the
        roster (redaction)."""
        return versions.Step(
            f"staging_{self.gold.name}",
            __name__,
            (
                versions.Upstream(f"silver_{self.pages_table}", None),
                versions.Upstream("silver_hris_roster"),
            ),
        )


INVOICES = DocumentFeed(
    source="invoice_documents",
    kind="invoice",
    pages_table="invoice_document_pages",
    task=INVOICE_EXTRACT_TASK,
    rules_model=INVOICE_RULES_MODEL_ID,
    gold=wap.GoldTable(
        "invoice_documents",
        not_null=invoice_suite.NOT_NULL_COLUMNS,
        checks=tuple(invoice_suite.CONSTRAINTS.items()),
    ),
    to_gold=to_gold_invoice_documents,
    suite=invoice_suite.gold_invoice_documents_suite,
    rules=invoice_suite.all_rule_names,
)
CONTRACTS = DocumentFeed(
    source="contract_documents",
    kind="contract",
    pages_table="contract_document_pages",
    task=CONTRACT_EXTRACT_TASK,
    rules_model=CONTRACT_RULES_MODEL_ID,
    gold=wap.GoldTable(
        "contract_terms",
        not_null=contract_suite.NOT_NULL_COLUMNS,
        checks=tuple(contract_suite.CONSTRAINTS.items()),
    ),
    to_gold=to_gold_contract_terms,
    suite=contract_suite.gold_contract_terms_suite,
    rules=contract_suite.all_rule_names,
)


def ingest_documents_dates(
    session: SparkSession, lakehouse: LakehouseResource, feed: DocumentFeed, days: list[date]
) -> dict[date, dict[str, int]]:
    """Land a run's dates of a feed's documents in bronze in one commit; files and bytes per
    date."""
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    files = lakehouse.read_landed_documents(session, feed.source, days)
    bronze = files.transform(to_bronze_documents(ingested_at))
    commit = lakehouse.write_dates(bronze, feed.bronze, days)
    counts = (
        lakehouse.read_dates(session, feed.bronze, days, commit.version)
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
    session: SparkSession, lakehouse: LakehouseResource, feed: DocumentFeed, days: list[date]
) -> DataFrame:
    """Bronze documents of ``days``, each with where its content first landed (null: here)."""
    every = lakehouse.read(session, feed.bronze).where(F.col("business_date") <= F.lit(max(days)))
    hashes = every.select("business_date", "file_name", "sha256")
    firsts = hashes.transform(with_first_landing()).where(
        F.col("business_date").isin([F.lit(d) for d in days])
    )
    return lakehouse.read_dates(session, feed.bronze, days).join(
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
    session: SparkSession, lakehouse: LakehouseResource, feed: DocumentFeed, days: list[date]
) -> PagesWritten:
    """Read a run's new documents of a feed into its silver pages; quarantine the bad."""
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    documents = documents_with_first_landing(session, lakehouse, feed, days).cache()
    originals = documents.where(F.col("duplicate_of_file").isNull())
    tasks = session.sparkContext.defaultParallelism
    pages = originals.transform(read_document_pages(tasks)).cache()
    version = lakehouse.write_dates(pages.transform(silver_pages), feed.pages, days).version
    lakehouse.write_dates(
        pages.transform(quarantined_documents(ingested_at, feed.source)),
        QUARANTINE,
        days,
        {"source": feed.source},
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


def bronze_documents_asset(feed: DocumentFeed, description: str) -> AssetsDefinition:
    """``bronze_<source>``: each date's landed files of the feed, as they landed."""
    step = feed.bronze_step

    @asset(
        name=step.asset,
        code_version=step.code_version,
        partitions_def=daily_partitions,
        backfill_policy=BACKFILL_POLICY,
        retry_policy=TRANSIENT_RETRY,
        group_name="bronze",
        kinds={"spark", "delta", "pdf"},
        description=description,
    )
    def _bronze(context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource):
        plan = versions.plan_landed_run(context, spark.get_session, lakehouse, step, feed.source)
        if not plan.to_run:
            yield from plan.unchanged_results(context)
            return
        counts = ingest_documents_dates(spark.session, lakehouse, feed, plan.to_run)
        versions.record(spark.session, lakehouse, plan, plan.to_run, context.run_id)
        yield MaterializeResult(
            metadata={
                **plan.metadata(),
                "files": sum(c["files"] for c in counts.values()),
                "pages": sum(c["pages"] for c in counts.values()),
                "unreadable_files": sum(c["unreadable"] for c in counts.values()),
                "by_date": MetadataValue.json({d.isoformat(): c for d, c in counts.items()}),
                "table": feed.bronze.qualified,
                "location": lakehouse.path(feed.bronze),
            }
        )

    return _bronze


def silver_pages_asset(feed: DocumentFeed, description: str) -> AssetsDefinition:
    """``silver_<pages>``: the pages of each document first landed on the date, with the
    ``documents_conserved`` check."""
    step = feed.pages_step
    name = step.asset

    @asset(
        name=name,
        code_version=step.code_version,
        deps=[AssetKey(feed.bronze_step.asset)],
        partitions_def=daily_partitions,
        backfill_policy=BACKFILL_POLICY,
        retry_policy=TRANSIENT_RETRY,
        group_name="silver",
        kinds={"spark", "delta", "tesseract"},
        check_specs=[
            AssetCheckSpec(
                "documents_conserved",
                asset=name,
                description="bronze documents = documents read + repeats of an earlier document "
                "+ quarantined documents: nothing dropped.",
                blocking=True,
            )
        ],
        description=description,
    )
    def _pages(context: AssetExecutionContext, spark: SparkResource, lakehouse: LakehouseResource):
        plan = versions.plan_run(context, spark.get_session, lakehouse, step)
        if not plan.to_run:
            yield from plan.unchanged_results(context)
            return
        written = read_pages_dates(spark.session, lakehouse, feed, plan.to_run)
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
                "table": feed.pages.qualified,
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
            asset_key=name,
            check_name="documents_conserved",
            passed=not unbalanced,
            metadata={"dates_not_conserved": MetadataValue.json(unbalanced)},
        )

    return _pages


def extraction_inputs(
    session: SparkSession, lakehouse: LakehouseResource, feed: DocumentFeed, days: list[date]
) -> DataFrame:
    """The run's readable documents with their pages (a repeat: its first landing's pages)."""
    documents = (
        documents_with_first_landing(session, lakehouse, feed, days)
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
        lakehouse.read_dates(session, feed.pages, [*days, *earlier])
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


def stage_documents(feed: DocumentFeed) -> Callable[..., Staged]:
    """The staging of a feed for ``staged_gold_asset``: extract a run's documents (one engine
    pass over all dates), stage them in the gold shape, audit each date."""

    def stage(
        session: SparkSession,
        lakehouse: LakehouseResource,
        enrichment: EnrichmentResource,
        days: list[date],
        run_id: str,
    ) -> Staged:
        documents = extraction_inputs(session, lakehouse, feed, days).cache()
        names = roster_names_on_dates(lakehouse, session, days)
        extracted = enrichment.extract_documents(lakehouse, documents, feed.task, run_id, names)
        candidate = extracted.transform(feed.to_gold(documents))
        staged_version = wap.stage_dates(lakehouse, candidate, feed.gold, days)
        documents.unpersist()
        reports = wap.audit_dates(
            lakehouse, session, feed.gold, days, staged_version, lambda _: feed.suite(), run_id
        )
        return Staged(staged_version, reports)

    return stage


def extractor_description(feed: DocumentFeed, enrichment: EnrichmentResource) -> str:
    """Who reads the documents: offline the feed's rules (never the embedded classifier the
    other tasks fall back to), else the configured LLM."""
    if enrichment.provider_kind == EMBEDDED:
        return f"embedded rules {feed.rules_model} (no OPENAI_API_KEY set: no LLM used)"
    return enrichment.describe()


def staging_documents_asset(
    feed: DocumentFeed,
    preview: list[str],
    figures: Callable[[DataFrame], dict],
    description: str,
) -> AssetsDefinition:
    """``staging_<gold>`` on the shared staging skeleton: the feed's extraction and audit, and
    what it reports (who read the documents, its own ``figures``, a preview)."""

    def describe(staged: DataFrame, _done: Staged, enrichment: EnrichmentResource) -> dict:
        return {
            "enrichment_provider": extractor_description(feed, enrichment),
            **figures(staged),
            **enrichment_rollup(staged),
            "preview": MetadataValue.md(markdown_preview(staged.select(*preview))),
        }

    return staged_gold_asset(
        name=feed.staging_step.asset,
        table=feed.gold,
        step=feed.staging_step,
        rules=feed.rules(),
        deps=[feed.pages_step.asset, "silver_hris_roster"],
        stage=stage_documents(feed),
        describe=describe,
        description=description,
    )


# --- invoices ------------------------------------------------------------------------------------


def _invoice_checks(staged: DataFrame) -> dict:
    checks = staged.groupBy("net_plus_tax_is_total").count().collect()
    return {"net_plus_tax_is_total": MetadataValue.json({str(r[0]): r[1] for r in checks})}


bronze_invoice_documents = bronze_documents_asset(
    INVOICES,
    "Vendor invoice documents as landed (PDF, PNG/JPEG/TIFF scans): one row per file with its "
    "bytes, SHA-256, page count, name and size; read_error when it cannot be opened. "
    "Partitioned by business_date, the landing folder's.",
)
silver_invoice_document_pages = silver_pages_asset(
    INVOICES,
    "One row per page of each invoice document first landed on business_date: its text, how it "
    "was read (text_layer, or ocr for a page without one) and Tesseract's mean word confidence. "
    "A repeat of an earlier document (same SHA-256) is not read again; a file that cannot be "
    "read is in silver.quarantine (UNREADABLE_DOCUMENT).",
)
staging_invoice_documents = staging_documents_asset(
    INVOICES,
    [
        "file_name",
        "invoice_number",
        "vendor_name",
        "total",
        "currency",
        "net_plus_tax_is_total",
        "duplicate_of_file",
        "source",
    ],
    _invoice_checks,
    "Candidate gold partition of invoice documents: the extract task's fields (each with value, "
    "confidence, page, span and source: llm, cache or rule), line items, the arithmetic checks "
    "and provenance; a repeated document points at its first landing. Audited by the "
    "gold_invoice_documents suite before anything reaches gold.",
)
gold_invoice_documents = publish_asset(
    INVOICES.gold,
    staging_invoice_documents,
    "Published invoice documents: one row per readable document per business_date with its "
    "fields typed (vendor, tax id, invoice number, dates, currency, net, tax, total, PO), every "
    "field's confidence, page, span and source, line items, the arithmetic checks, the page and "
    "OCR facts, where a repeated document first landed, and provenance. An analyst's value "
    "for a field (make review) is published on top of the extraction's: in the field's column "
    "and its element of fields (source = human), named in reviewed_fields, checks recomputed.",
    reviewed=REVIEWED_TABLES["invoice_documents"],
)

# --- contracts -----------------------------------------------------------------------------------


def _contract_terms(staged: DataFrame) -> dict:
    days = staged.groupBy("payment_days").count().collect()
    return {"payment_days": MetadataValue.json({str(r[0]): r[1] for r in days})}


bronze_contract_documents = bronze_documents_asset(
    CONTRACTS,
    "Vendor contracts as landed (PDF, PNG/JPEG/TIFF scans): one row per file with its bytes, "
    "SHA-256, page count, name and size; read_error when it cannot be opened. Partitioned by "
    "business_date, the landing folder's.",
)
silver_contract_document_pages = silver_pages_asset(
    CONTRACTS,
    "One row per page of each contract first landed on business_date: its text, how it was read "
    "(text_layer, or ocr) and Tesseract's mean word confidence. A repeat of an earlier contract "
    "(same SHA-256) is not read again; a file that cannot be read is in silver.quarantine "
    "(UNREADABLE_DOCUMENT).",
)
staging_contract_terms = staging_documents_asset(
    CONTRACTS,
    [
        "file_name",
        "effective_date",
        "payment_terms",
        "payment_days",
        "governing_law",
        "duplicate_of_file",
        "source",
    ],
    _contract_terms,
    "Candidate gold partition of contract terms: the extract task's contract fields (parties "
    "with roles, effective date, term, renewal, notice, payment terms, governing law; each with "
    "value, confidence, page, span and source: llm, cache or rule), the payment terms in days, "
    "and provenance. Audited by the gold_contract_terms suite before anything reaches gold.",
)
gold_contract_terms = publish_asset(
    CONTRACTS.gold,
    staging_contract_terms,
    "Published contract terms: one row per readable contract per business_date with its terms "
    "typed, payment_days (net N), the parties and their roles, every value's confidence, page, "
    "span and source, the page and OCR facts, where a repeated contract first landed, and "
    "provenance. The close checks AP's payment terms against it (AP_TERMS_OUTSIDE_CONTRACT). "
    "An analyst's value for a term (make review) is published on top of the extraction's: in "
    "the term's column and its element of fields (source = human), named in reviewed_fields, "
    "payment_days read again from a reviewed payment_terms.",
    reviewed=REVIEWED_TABLES["contract_terms"],
)
