"""Offline, the ``extract`` task is answered by the embedded rules: nothing is sent anywhere."""

import socket

import pytest

from documents.engine import Document, extract_documents
from documents.text import METHOD_PLAIN_TEXT, PageText
from enrichment.models import SOURCE_RULE, STATUS_OK, STATUS_SKIPPED, RecordIn
from enrichment.prompts import CONTRACT_EXTRACT_TASK, INVOICE_EXTRACT_TASK
from enrichment.providers import ProviderConfig, build_provider
from enrichment.redaction import PATTERNS, Redactor

PAGE = (
    "Fabrikam Inc.\n"
    "Invoice No: F-1001\n"
    "Date: 2024-05-02\n"
    "Contact: sales@fabrikam.example\n"
    "Amount paid: 1,234.00 USD\n"
    "Total: 1,234.00 USD\n"
)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the offline path opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_embedded_provider_answers_extract_with_the_rules(no_network: None) -> None:
    (out,) = extract_documents(
        [Document("d", (PageText(1, PAGE, METHOD_PLAIN_TEXT),))],
        INVOICE_EXTRACT_TASK,
        ProviderConfig(),
    )
    assert (out.status, out.source, out.model) == (
        STATUS_OK,
        SOURCE_RULE,
        "embedded/invoice-rules-v1",
    )
    assert out.tokens_in == out.tokens_out == 0 and out.error is None
    record = out.extraction
    assert record.invoice_number.value == "F-1001" and record.invoice_number.source == SOURCE_RULE
    assert PAGE[record.total.start : record.total.end] == "1,234.00"
    assert out.redactions == {"EMAIL": 1}  # redacted even offline; amounts are not pay


def test_embedded_provider_reads_the_page_markers_of_a_record(no_network: None) -> None:
    provider = build_provider(ProviderConfig())
    text = "<<page 1>>\nFabrikam Inc.\nInvoice No: F-1001\n<<page 2>>\nTotal: 99.50 EUR\n"
    (out,) = provider.run(CONTRACT_EXTRACT_TASK, [RecordIn("c", "no contract terms here")])
    assert out.status == STATUS_OK and out.model == "embedded/contract-rules-v1"
    (invoice,) = provider.run(INVOICE_EXTRACT_TASK, [RecordIn("i", text)])
    assert '"page":2' in invoice.extraction and invoice.source == SOURCE_RULE


def test_a_document_without_text_is_skipped(no_network: None) -> None:
    (out,) = extract_documents(
        [Document("blank", (PageText(1, "  ", METHOD_PLAIN_TEXT),))],
        INVOICE_EXTRACT_TASK,
        ProviderConfig(),
    )
    assert out.status == STATUS_SKIPPED and out.error == "no text on any page"


def test_redactor_applies_only_the_kinds_asked_for() -> None:
    text = "Amount paid: 1,234.00, mail a.b@example.com"
    assert Redactor().redact(text).counts == {"EMAIL": 1, "SALARY": 1}
    assert Redactor(kinds=[k for k in PATTERNS if k != "SALARY"]).redact(text).counts == {
        "EMAIL": 1
    }
    with pytest.raises(ValueError, match="unknown redaction kinds"):
        Redactor(kinds=["POSTCODE"])
