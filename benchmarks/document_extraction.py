"""Document extraction on real labelled invoices: accuracy, throughput, and the PDF library choice.

First, the sample generator's own invoices (``--generated-dates``, 10 by default): digital and
scanned precision and recall per field against the generator's answer key, and pages per second.

Reads ``../shared/data/invoices_invoice2data`` (16 documents with a ``.json`` answer each; see
``../shared/data/README.md``) and prints, for the embedded rule extractor
(``documents/extract.py``):

* field-level precision and recall per field and overall, split by how the text was read:
  digital (PDF text layer), scanned (PNG through Tesseract OCR) and plain text;
* pages per second of PDF text extraction and of OCR on this machine;
* pypdf vs pdfplumber: the same extractor on each library's text of the same PDFs;
* the arithmetic checks (lines sum to net, net + tax = total) over the documents;
* the ``extract`` enrichment task (``documents/engine.py``) against the tests' local fake
  OpenAI server (``tests/enrichment/fake_openai.py``, on 127.0.0.1; it answers with the rule
  extractor's values and quotes, so these are request and token figures, not LLM accuracy):
  requests and tokens per document packed (the engine's defaults: up to 20 documents and 6,000
  record tokens a request) vs one document per request, quotes located, and a cached re-run.

What counts as correct (``documents/evaluation.py``): a field is scored only where the answer
states it. Correct = dates equal as ISO dates; amounts equal within 0.01; currency codes equal;
vendor name: lower-cased, whitespace-collapsed, one contains the other; invoice number: equal
after lower-casing and dropping whitespace and a leading ``#``. Precision = correct / fields we
filled (among those the answer states); recall = correct / fields the answer states. Answer
keys: issuer → vendor_name, invoice_number, date → invoice_date, date_due → due_date,
amount → total, amount_tax → tax, amount_untaxed → net, currency.

Not a test: run on demand (``make bench-docs``). Needs ``tesseract`` for the scanned rows.

Usage: .venv/bin/python benchmarks/document_extraction.py [--data DIR]
"""

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pypdf

from documents.checks import check_invoice
from documents.engine import Document, DocumentOutcome, extract_documents
from documents.evaluation import FieldScore, load_answer, score, total
from documents.extract import MODEL_ID, extract_invoice
from documents.text import (
    IMAGE_SUFFIXES,
    METHOD_TEXT_LAYER,
    PageText,
    read_pages,
    tesseract_available,
)
from enrichment.prompts import INVOICE_EXTRACT_TASK
from enrichment.providers.base import ProviderConfig
from tests.enrichment.fake_openai import FakeOpenAI

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "invoices_invoice2data"
GROUPS = {".pdf": "digital (PDF text layer)", ".txt": "plain text"}
SCANNED = "scanned (PNG via OCR)"


def pypdf_pages(path: Path) -> list[PageText]:
    """The same pages as pypdf reads them (for the comparison only)."""
    reader = pypdf.PdfReader(path)
    return [
        PageText(number, page.extract_text() or "", METHOD_TEXT_LAYER)
        for number, page in enumerate(reader.pages, start=1)
    ]


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def print_scores(title: str, scores: dict[str, FieldScore]) -> None:
    print(f"\n{title}")
    header = f"{'labelled':>8} {'filled':>6} {'correct':>7} {'precision':>9} {'recall':>6}"
    print(f"  {'field':16} {header}")
    for field, counts in scores.items():
        print(
            f"  {field:16} {counts.labelled:8} {counts.predicted:6} {counts.correct:7} "
            f"{_fmt(counts.precision):>9} {_fmt(counts.recall):>6}"
        )


def timed(read: Callable[[Path], list[PageText]], path: Path) -> tuple[list[PageText], float]:
    started = time.perf_counter()
    pages = read(path)
    return pages, time.perf_counter() - started


def _run(
    server: FakeOpenAI, documents: list[Document], cache: dict[str, str], **settings: int
) -> tuple[list[DocumentOutcome], int, float]:
    """The outcomes, the requests the server received for them, and the seconds taken."""
    before = len(server.chat_requests())
    config = ProviderConfig(kind="openai", base_url=server.base_url, api_key="bench", **settings)
    started = time.perf_counter()
    outcomes = extract_documents(documents, INVOICE_EXTRACT_TASK, config, cache=cache)
    elapsed = time.perf_counter() - started
    return outcomes, len(server.chat_requests()) - before, elapsed


def _print_run(name: str, outcomes: list[DocumentOutcome], requests: int, seconds: float) -> None:
    n = len(outcomes)
    tokens_in = sum(o.tokens_in for o in outcomes)
    tokens_out = sum(o.tokens_out for o in outcomes)
    largest = max(o.tokens_out for o in outcomes)
    print(
        f"  {name:34} {requests:8} {requests / n:7.2f} {tokens_in / n:13,.0f} "
        f"{tokens_out / n:7,.0f} {largest:7,} {seconds:6.1f} s"
    )


def bench_extract_task(documents: list[Document]) -> None:
    """The extract task against the fake server: packed vs one per request, then cached.

    Tokens are those the outcomes record (the server's reported usage, shared between the
    documents of a request).
    """
    spec = INVOICE_EXTRACT_TASK.extraction
    assert spec is not None
    pages = sum(len(d.pages) for d in documents)
    print(
        f"\nExtract task ({INVOICE_EXTRACT_TASK.name}) against the local fake OpenAI server: "
        f"{len(documents)} documents, {pages} pages"
    )
    header = (
        f"{'requests':>8} {'req/doc':>7} {'tokens in/doc':>13} {'out/doc':>7} {'max out':>7} "
        f"{'time':>8}"
    )
    print(f"  {'run':34} {header}")
    with FakeOpenAI() as server:
        cache: dict[str, str] = {}
        packed, requests, seconds = _run(server, documents, cache)
        _print_run("packed (engine defaults)", packed, requests, seconds)
        alone, requests, seconds = _run(server, documents, {}, max_records_per_request=1)
        _print_run("one document per request", alone, requests, seconds)
        cached, requests, seconds = _run(server, documents, cache)
        _print_run("cached re-run of the packed run", cached, requests, seconds)
    print(f"  cached re-run: outcomes by source {dict(Counter(o.source for o in cached))}")
    cut = sum(any(f.startswith("pages_sent:") for f in o.flags) for o in packed)
    values = [
        v
        for o in packed
        if o.extraction is not None
        for name in spec.field_names
        if (v := getattr(o.extraction, name)) is not None
    ]
    located = sum(v.start is not None for v in values)
    statuses = dict(Counter(f"{o.status}/{o.source}" for o in packed))
    print(
        f"  packed run: {statuses}; documents cut to fit a request: {cut}; header values "
        f"with a located span: {located} of {len(values)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--generated-dates",
        type=int,
        default=10,
        help="dates of the sample generator's invoices to score too (0: none)",
    )
    args = parser.parse_args()
    if args.generated_dates:
        if tesseract_available():
            bench_generated(args.generated_dates)
        else:
            print("tesseract not found: the generated invoices (one scanned a date) skipped")
    if not args.data.is_dir():
        print(f"labelled invoices not found at {args.data} (see ../shared/data/README.md)")
        return 0
    documents = sorted(
        p for p in args.data.iterdir() if p.suffix != ".json" and p.with_suffix(".json").exists()
    )
    ocr = tesseract_available()
    if not ocr:
        print("tesseract not found: scanned documents skipped (apt-get install tesseract-ocr)")
    by_group: dict[str, list] = {}
    by_library: dict[str, list] = {"pdfplumber": [], "pypdf": []}
    seconds: Counter[str] = Counter()
    pages_read: Counter[str] = Counter()
    ocr_confidences: list[float] = []
    checks: Counter[tuple[str, str]] = Counter()
    read: list[Document] = []
    for path in documents:
        answer = load_answer(path)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if not ocr:
                continue
            group, kind = SCANNED, "ocr"
        else:
            group, kind = GROUPS[path.suffix.lower()], "text"
        pages, elapsed = timed(read_pages, path)
        if path.suffix.lower() == ".pdf":
            kind = "pdfplumber"
        seconds[kind] += elapsed
        pages_read[kind] += len(pages)
        ocr_confidences += [p.ocr_confidence for p in pages if p.ocr_confidence is not None]
        read.append(Document(path.name, tuple(pages)))
        extraction = extract_invoice(pages)
        by_group.setdefault(group, []).append(score(extraction, answer))
        for check in check_invoice(extraction):
            checks[(check.name, check.status)] += 1
        if path.suffix.lower() == ".pdf":
            by_library["pdfplumber"].append(score(extraction, answer))
            other, elapsed = timed(pypdf_pages, path)
            seconds["pypdf"] += elapsed
            pages_read["pypdf"] += len(other)
            by_library["pypdf"].append(score(extract_invoice(other), answer))

    print(f"Embedded extractor {MODEL_ID} on {len(documents)} labelled documents in {args.data}")
    for group, scores in by_group.items():
        print_scores(f"{group}: {len(scores)} documents", total(scores))
    print_scores(
        f"all: {sum(map(len, by_group.values()))} documents",
        total(s for scores in by_group.values() for s in scores),
    )

    print("\nThroughput (this machine)")
    for kind in ("pdfplumber", "pypdf", "ocr"):
        if pages_read[kind]:
            rate = pages_read[kind] / seconds[kind]
            count = f"{pages_read[kind]:3} pages in {seconds[kind]:6.2f} s"
            print(f"  {kind:10} {count}: {rate:6.1f} pages/s")
    if ocr_confidences:
        mean = sum(ocr_confidences) / len(ocr_confidences)
        print(f"  mean Tesseract word confidence over OCR'd pages: {mean:.3f}")

    print("\nPDF library: the same extractor on each library's text of the same PDFs")
    for library, scores in by_library.items():
        overall = total(scores)["overall"]
        print(
            f"  {library:10} correct {overall.correct:3} / labelled {overall.labelled:3}, "
            f"precision {_fmt(overall.precision)}, recall {_fmt(overall.recall)}"
        )

    print("\nArithmetic checks (documents)")
    for (name, status), count in sorted(checks.items()):
        print(f"  {name:24} {status:15} {count:3}")

    bench_extract_task(read)
    return 0


def bench_generated(dates: int) -> None:
    """The embedded extractor on the sample generator's invoices, against its answer key.

    ``sample.close.generate_close`` writes each date's PO invoices as PDFs of two layouts, one of
    them rasterised and noised (a PNG, or a PDF without text layer) so it needs OCR, and an answer
    key stating every field of every document. Scored like the labelled invoices, plus the
    vendor tax id and PO number the generator states. A seeded discrepancy is a fact of the
    document (the vendor billed more): the answer key holds what the document prints.
    """
    import tempfile
    from datetime import date, timedelta

    from documents.evaluation import sample_answer
    from sample.close import generate_close

    end = date(2026, 3, 31)
    with tempfile.TemporaryDirectory(prefix="bench-docs-") as tmp:
        root = Path(tmp)
        keys = generate_close(
            root, end - timedelta(days=dates - 1), end, gl_lines_per_day=60, employees=20,
            expense_rows=10,
        )  # fmt: skip
        by_group: dict[str, list] = {}
        seconds: Counter[str] = Counter()
        pages_read: Counter[str] = Counter()
        for key in keys:
            folder = root / "landing" / "invoice_documents" / f"business_date={key.business_date}"
            for name, entry in key.invoice_documents.items():
                pages, elapsed = timed(read_pages, folder / name)
                ocr = any(p.method != METHOD_TEXT_LAYER for p in pages)
                kind = "scanned" if entry["scanned"] else "digital"
                group = f"{kind} ({'OCR' if ocr else 'text layer'})"
                seconds[group] += elapsed
                pages_read[group] += len(pages)
                by_group.setdefault(group, []).append(
                    score(extract_invoice(pages), sample_answer(entry))
                )
    documents = sum(map(len, by_group.values()))
    print(
        f"\nEmbedded extractor {MODEL_ID} on the sample generator's invoices: {documents} "
        f"documents over {dates} dates, scored against its answer key"
    )
    for group, scores in sorted(by_group.items()):
        print_scores(f"{group}: {len(scores)} documents", total(scores))
        rate = pages_read[group] / seconds[group]
        print(f"  read {pages_read[group]} pages in {seconds[group]:.2f} s: {rate:.1f} pages/s")
    print_scores(
        f"all generated: {documents} documents",
        total(s for scores in by_group.values() for s in scores),
    )


if __name__ == "__main__":
    sys.exit(main())
