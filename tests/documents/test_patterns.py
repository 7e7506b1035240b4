import datetime as dt
from decimal import Decimal

import pytest

from documents.patterns import find_amounts, find_currencies, find_dates, parse_amount


@pytest.mark.parametrize(
    ("printed", "value"),
    [
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("1'234.56", "1234.56"),
        ("2.321,00", "2321.00"),
        ("4,11", "4.11"),
        ("-9,32", "-9.32"),
        ("1939", "1939"),
    ],
)
def test_amounts_in_either_decimal_convention(printed, value):
    assert parse_amount(printed) == Decimal(value)


@pytest.mark.parametrize("printed", ["01.05.14", "1.23.456", "", "-", "abc"])
def test_inconsistent_grouping_is_no_amount(printed):
    assert parse_amount(printed) is None


def test_amounts_need_cents_or_a_currency_sign_and_skip_rates_and_dates():
    text = "Tax 15% on 2 items 03/20/2023 $ 16.94 Rs 1939 total 4,11 €"
    found = find_amounts(text)
    assert [m.value for m in found] == [Decimal("16.94"), Decimal("1939"), Decimal("4.11")]
    assert text[found[0].start : found[0].end] == "16.94"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invoice Date: August 3 , 2014", dt.date(2014, 8, 3)),
        ("Rechnungsdatum 7. Mai 2014", dt.date(2014, 5, 7)),
        ("Facture du 02 Juillet 2015", dt.date(2015, 7, 2)),
        ("Factuurdatum: 19 april 2014", dt.date(2014, 4, 19)),
        ("Date: Jan 1, 2022", dt.date(2022, 1, 1)),
        ("Data wystawienia: 2021-01-01", dt.date(2021, 1, 1)),
        ("Date : 28/11/2022", dt.date(2022, 11, 28)),
        ("Datum 8-9-2022", dt.date(2022, 9, 8)),
    ],
)
def test_dates_in_several_formats_and_languages(text, expected):
    (found,) = find_dates(text)
    assert found.value == expected
    assert text[found.start : found.end].strip()


def test_ambiguous_numeric_dates_follow_the_documents_unambiguous_ones():
    us = find_dates("Invoice Date 03/20/2023 Due 04/05/2023")
    assert [m.value for m in us] == [dt.date(2023, 3, 20), dt.date(2023, 4, 5)]
    european = find_dates("Date 20/03/2023 Due 04/05/2023")
    assert [m.value for m in european] == [dt.date(2023, 3, 20), dt.date(2023, 5, 4)]


def test_currencies_from_codes_and_signs():
    found = find_currencies("Total EUR 29.99 or $ 4 or Rs -40.00, PLN; not an INVOICE")
    assert [m.value for m in found] == ["EUR", "USD", "INR", "PLN"]


def test_empty_text_has_no_values():
    assert find_amounts("") == [] and find_dates("") == [] and find_currencies("") == []
