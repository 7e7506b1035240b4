from documents.contract_rules import MODEL_ID, extract_contract
from documents.text import METHOD_PLAIN_TEXT, PageText

FIRST = (
    "MASTER SERVICES AGREEMENT\n"
    'This Agreement is made between Acme Widgets Ltd. ("Supplier") and Globex Corporation '
    '("Customer").\n'
    "Effective Date: 1 March 2024\n"
    "1. Term. This Agreement continues for an initial term of two (2) years.\n"
    "It renews automatically for successive one-year periods unless either party gives "
    "90 days' prior written notice.\n"
    "2. Payment. Customer shall pay each invoice within thirty (30) days of receipt of the "
    "invoice.\n"
)
SECOND = "9. Governing law. This Agreement is governed by the laws of the State of New York, "


def test_contract_terms_with_their_page_and_span():
    pages = [PageText(1, FIRST, METHOD_PLAIN_TEXT), PageText(2, SECOND, METHOD_PLAIN_TEXT)]
    found = extract_contract(pages)
    assert found.model == MODEL_ID
    law = found.governing_law
    assert (law.value, law.page, law.source) == ("State of New York", 2, "rule")
    assert SECOND[law.start : law.end] == "State of New York"
    assert str(found.effective_date.value) == "2024-03-01"
    assert FIRST[found.effective_date.start : found.effective_date.end] == "1 March 2024"
    assert found.term.value == "two (2) years"
    assert found.notice_period.value == "90 days' prior written notice"
    assert found.payment_terms.value == "within thirty (30) days of receipt of the invoice"
    assert found.renewal_terms.value.startswith("It renews automatically")
    assert [(p.name, p.role) for p in found.parties] == [
        ("Acme Widgets Ltd.", "Supplier"),
        ("Globex Corporation", "Customer"),
    ]
    assert all(FIRST[p.start : p.end] == p.name for p in found.parties)


def test_nothing_found_stays_none():
    found = extract_contract([PageText(1, "Minutes of the weekly meeting.", METHOD_PLAIN_TEXT)])
    assert found.governing_law is None and found.term is None and found.parties == ()


def test_parties_behind_the_quotes_ocr_reads():
    """A scan's OCR turns a straight closing quote into a curly one (seen on the sample's
    rasterised contract); the parties are still found."""
    text = (
        "MASTER SERVICES AGREEMENT\n"
        'This Agreement is made between Corporate Services Inc. ("Customer") and\n'
        "Umbrella Logistics GmbH (\u201cSupplier\u2019). . .\n"
    )
    found = extract_contract([PageText(1, text, METHOD_PLAIN_TEXT)])
    assert [(p.name, p.role) for p in found.parties] == [
        ("Corporate Services Inc.", "Customer"),
        ("Umbrella Logistics GmbH", "Supplier"),
    ]
