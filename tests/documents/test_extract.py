import datetime as dt
from decimal import Decimal

from documents.extract import CONF_FIRST_DATE, CONF_SAME_LINE, MODEL_ID, extract_invoice
from documents.text import METHOD_TEXT_LAYER, PageText


def page(text: str, number: int = 1) -> PageText:
    return PageText(number, text, METHOD_TEXT_LAYER)


LABELLED = """ACME Supplies GmbH
Invoice No: INV-2024-0042
Invoice Date: 05.03.2024
Due Date: 04.04.2024
PO Number: PO-7781
Widget 3 10,00 30,00
Subtotal 30,00 EUR
VAT 19% 5,70 EUR
Total amount due 35,70 EUR
"""


def test_labelled_fields_with_their_spans_and_provenance():
    result = extract_invoice([page(LABELLED)])
    assert result.model == MODEL_ID
    assert result.invoice_number.value == "INV-2024-0042"
    assert result.invoice_date.value == dt.date(2024, 3, 5)
    assert result.due_date.value == dt.date(2024, 4, 4)
    assert result.po_number.value == "PO-7781"
    assert (result.net.value, result.tax.value, result.total.value) == (
        Decimal("30.00"),
        Decimal("5.70"),
        Decimal("35.70"),
    )
    assert result.currency.value == "EUR"
    assert result.vendor_name.value == "ACME Supplies GmbH"
    total = result.total
    assert LABELLED[total.start : total.end] == "35,70"
    assert (total.page, total.source, total.confidence) == (1, "rule", CONF_SAME_LINE)
    (line,) = result.line_items
    assert (line.description, line.quantity, line.unit_price, line.amount) == (
        "Widget",
        Decimal("3"),
        Decimal("10.00"),
        Decimal("30.00"),
    )


def test_values_under_a_header_row_follow_their_labels():
    text = "Invoice Date: Due Date: Reference:\n03/20/2023 04/04/2023 REF1\n"
    result = extract_invoice([page(text)])
    assert result.invoice_date.value == dt.date(2023, 3, 20)
    assert result.due_date.value == dt.date(2023, 4, 4)
    table = "BTW % Grondslag BTW bedrag Totaal\n21 % 41,31 8,68 49,99\n"
    result = extract_invoice([page(table)])
    assert (result.net.value, result.tax.value, result.total.value) == (
        Decimal("41.31"),
        Decimal("8.68"),
        Decimal("49.99"),
    )


def test_a_stronger_label_wins_and_an_order_date_is_not_the_invoice_date():
    text = "Order Date: 01/02/2024\nTotal 1 278.61 40.39 319.00\nGrand Total 319.00\n"
    result = extract_invoice([page(text)])
    assert result.total.value == Decimal("319.00")
    # Only the unlabelled heuristic finds a date, and says so in its confidence.
    assert result.invoice_date.confidence == CONF_FIRST_DATE < result.total.confidence


def test_fields_are_found_on_later_pages_and_spans_index_that_page():
    pages = [page("Rechnung\nRechnungsnr. 30064443"), page("Summe\nTotal EUR 34,73", 2)]
    result = extract_invoice(pages)
    assert result.invoice_number.value == "30064443"
    assert (result.total.page, result.total.value) == (2, Decimal("34.73"))
    assert pages[1].text[result.total.start : result.total.end] == "34,73"


def test_an_empty_page_or_no_pages_give_no_fields():
    for pages in ([page("")], [page("   \n\n")], []):
        result = extract_invoice(pages)
        assert result.model == MODEL_ID
        assert all(getattr(result, name) is None for name in ("total", "invoice_number"))
        assert result.vendor_name is None and result.line_items == ()
