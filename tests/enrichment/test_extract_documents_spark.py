"""The extract task in Spark tasks (``EnrichmentResource.extract_documents``) to gold's shape.

Offline the rules answer in tasks; against the local fake OpenAI server the answers are cached in
``ops.llm_cache`` and a second run is answered from it without a request.
"""

import json
from datetime import date

from pyspark.sql import functions as F

from enrichment.prompts import CONTRACT_EXTRACT_TASK, INVOICE_EXTRACT_TASK
from infra.enrichment import LLM_CACHE, LLM_CALLS, EnrichmentResource
from infra.lakehouse import LakehouseResource
from infra.review import REVIEWED_TABLES
from infra.settings import review_thresholds
from transforms.contract_documents import to_gold_contract_terms
from transforms.frames import local_frame
from transforms.invoice_documents import to_gold_invoice_documents
from transforms.review import DECISION_SCHEMA

DAY = date(2026, 10, 1)
PAGE_1 = (
    "Acme Office Supply\nInvoice No: INV-1\nInvoice Date: 2026-10-01\nDue Date: 2026-10-31\n"
    "Description Qty Unit Price Amount\nPaper 2 50.00 100.00\n"
)
PAGE_2 = "Net amount: 100.00\nVAT amount (8%): 8.00\nTotal: 108.00 USD\n"


CONTRACT = (
    "MASTER SERVICES AGREEMENT\nThis Agreement is made between Corporate Services Inc. "
    '("Customer") and Acme Office Supply Ltd. ("Supplier").\nEffective Date: 2026-01-15\n'
    "Supplier shall invoice monthly. Payment terms: net 45 days from the invoice date.\n"
    "This Agreement is governed by the laws of the State of New York.\n"
)


def _documents(spark, pages=None):
    pages = pages or {
        "a.pdf": [
            {"page": 1, "text": PAGE_1, "method": "text_layer"},
            {"page": 2, "text": PAGE_2, "method": "ocr", "ocr_confidence": 0.91},
        ],
        # A page without any text: nothing to read, and the row says so.
        "blank.pdf": [{"page": 1, "text": "", "method": "ocr", "ocr_confidence": 0.0}],
    }
    rows = [
        (DAY, name, f"h-{name}", 10, None, None, json.dumps(p), len(p), 1, None)
        for name, p in pages.items()
    ]
    return local_frame(
        spark,
        rows,
        "business_date date, file_name string, sha256 string, size_bytes long, "
        "duplicate_of_file string, duplicate_of_date date, pages_json string, pages int, "
        "ocr_pages int, min_ocr_confidence double",
    )


def _gold(resource: EnrichmentResource, spark, run_id: str) -> dict[str, dict]:
    documents = _documents(spark)
    extracted = resource.extract_documents(
        LakehouseResource(), documents, INVOICE_EXTRACT_TASK, run_id, {DAY: ["Jane Roe"]}
    )
    gold = extracted.transform(to_gold_invoice_documents(documents))
    return {r["file_name"]: r.asDict(recursive=True) for r in gold.collect()}


def test_offline_the_rules_read_each_document_in_spark_with_provenance(spark, lakehouse_root):
    gold = _gold(EnrichmentResource(), spark, "run-offline")
    row = gold["a.pdf"]
    assert (row["enrichment_status"], row["source"], row["model"]) == (
        "ok",
        "rule",
        "embedded/invoice-rules-v1",
    )
    assert (row["invoice_number"], str(row["total"]), row["invoice_date"]) == (
        "INV-1",
        "108.00",
        DAY,
    )
    total = next(f for f in row["fields"] if f["field"] == "total")
    assert (total["page"], total["source"]) == (2, "rule")
    assert PAGE_2[total["start"] : total["end"]] == "108.00"
    assert (row["net_plus_tax_is_total"], row["lines_sum_to_net"], row["checks_passed"]) == (
        "passed",
        "passed",
        True,
    )
    assert row["failure_kind"] == "none" and row["line_items"][0]["amount"] == 100
    blank = gold["blank.pdf"]
    assert (blank["enrichment_status"], blank["invoice_number"], blank["fields"]) == (
        "skipped",
        None,
        None,
    )
    # Offline nothing is cached: the rules are asked again next time.
    assert not LakehouseResource().exists(spark, LLM_CACHE)


def test_llm_answers_are_cached_and_a_second_run_sends_nothing(spark, lakehouse_root, fake_openai):
    resource = EnrichmentResource(api_key="sk-test", base_url=fake_openai.base_url)
    first = _gold(resource, spark, "run-1")
    assert (first["a.pdf"]["source"], first["a.pdf"]["invoice_number"]) == ("llm", "INV-1")
    sent = len(fake_openai.chat_requests())
    assert sent >= 1
    cached = LakehouseResource().read(spark, LLM_CACHE).where(F.col("task") == "extract_invoice")
    assert cached.where(F.col("extraction").isNotNull()).count() == 1
    second = _gold(resource, spark, "run-2")
    assert len(fake_openai.chat_requests()) == sent
    assert (second["a.pdf"]["source"], second["a.pdf"]["invoice_number"]) == ("cache", "INV-1")
    assert second["a.pdf"]["tokens_in"] == 0
    assert {f["source"] for f in second["a.pdf"]["fields"]} == {"cache"}
    # The call and its cost are in the call log, once: the cached run logs nothing.
    calls = (
        LakehouseResource()
        .read(spark, LLM_CALLS)
        .where(
            (F.col("task") == "extract_invoice")
            & (F.col("input_hash") == first["a.pdf"]["input_hash"])
        )
    )
    [call] = calls.collect()
    assert (call["run_id"], call["source"], call["model"]) == ("run-1", "llm", "gpt-4o-mini")
    assert call["tokens_in"] == first["a.pdf"]["tokens_in"] > 0


def test_offline_the_contract_rules_read_a_contract_into_gold_contract_terms(spark, lakehouse_root):
    pages = {"acme_msa.pdf": [{"page": 1, "text": CONTRACT, "method": "text_layer"}]}
    documents = _documents(spark, pages)
    extracted = EnrichmentResource().extract_documents(
        LakehouseResource(), documents, CONTRACT_EXTRACT_TASK, "run-contract", {DAY: []}
    )
    gold = extracted.transform(to_gold_contract_terms(documents))
    [row] = gold.collect()
    assert (row["enrichment_status"], row["source"], row["model"]) == (
        "ok",
        "rule",
        "embedded/contract-rules-v1",
    )
    assert (row["payment_terms"], row["payment_days"], str(row["effective_date"])) == (
        "net 45 days",
        45,
        "2026-01-15",
    )
    assert [(p["name"], p["role"]) for p in row["parties"]] == [
        ("Corporate Services Inc.", "Customer"),
        ("Acme Office Supply Ltd.", "Supplier"),
    ]
    terms = next(f for f in row["fields"] if f["field"] == "payment_terms")
    assert CONTRACT[terms["start"] : terms["end"]] == "net 45 days" and terms["source"] == "rule"
    assert row["document_sha256"] == "h-acme_msa.pdf" and row["failure_kind"] == "none"
    # The review loop's declaration fits gold's real shape: above the rules' 0.8 every term the
    # contract states queues (the ones it does not state are optional), and a person's payment
    # terms are published with the days read from them.
    contracts = REVIEWED_TABLES["contract_terms"]
    published = local_frame(spark, [row], gold.schema)
    strict = {**review_thresholds(), CONTRACT_EXTRACT_TASK.name: 0.85}
    queued = published.transform(contracts.candidates(strict)).collect()
    assert sorted((q["field"], q["confidence"], q["reason"]) for q in queued) == [
        ("effective_date", 0.8, "LOW_CONFIDENCE"),
        ("governing_law", 0.8, "LOW_CONFIDENCE"),
        ("payment_terms", 0.8, "LOW_CONFIDENCE"),
    ]
    decision = local_frame(spark,
        [("d1", "contract_terms", '{"file_name":"acme_msa.pdf"}', DAY, "payment_terms",
          "overridden", "net 45 days", "net 60 days", "amended", "alice", "analyst", None,
          "embedded/contract-rules-v1", "extract-contract-v1", 0.8)],
        DECISION_SCHEMA,
    )  # fmt: skip
    [reviewed] = published.transform(contracts.overlay(decision)).collect()
    assert (reviewed["payment_terms"], reviewed["payment_days"]) == ("net 60 days", 60)
    assert [r["reviewed_by"] for r in reviewed["reviewed_fields"]] == ["alice"]
