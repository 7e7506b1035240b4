"""A person's free value (a field without a taxonomy): what the ledger accepts and keeps."""

import pytest

from infra.review import DecisionError, reviewed_table
from infra.settings import REVIEW_THRESHOLDS
from transforms.review import free_value


@pytest.mark.parametrize(
    ("kind", "given", "kept"),
    [
        ("amount", " 1234.5 ", "1234.50"),
        ("amount", "-12", "-12.00"),
        ("date", "2026-03-31", "2026-03-31"),
        ("currency", "eur", "EUR"),
        ("string", "  INV-2026-0042 ", "INV-2026-0042"),
        (
            "text",
            "Bank fee not booked; book it on 1 April.",
            "Bank fee not booked; book it on 1 April.",
        ),
    ],
)
def test_a_free_value_is_kept_as_gold_stores_its_kind(kind, given, kept):
    assert free_value(kind, given) == kept


@pytest.mark.parametrize(
    ("kind", "given", "why"),
    [
        ("amount", "1,234.50", "is not an amount"),
        ("amount", "12.345", "is not an amount"),
        ("date", "31/03/2026", "is not a date"),
        ("currency", "euro", "three-letter"),
        ("string", "two\nlines", "one line"),
        ("string", "x" * 201, "at most 200"),
        ("text", "Ask jane.doe@example.com", "personal data (EMAIL)"),
        ("string", "   ", "needs a value"),
        ("string", None, "needs a value"),
        ("label", "meals", "no free value of kind"),
    ],
)
def test_a_free_value_that_gold_could_not_hold_is_refused_with_why(kind, given, why):
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        free_value(kind, given)


def test_a_contracts_terms_take_free_values_and_the_written_ones_no_personal_data():
    """gold.contract_terms' reviewed terms: the extraction's six, each a free value (no
    taxonomy); its date a date, its written terms text the suite's personal-data rule would
    pass (a person's value is not audited after them)."""
    contracts = reviewed_table("contract_terms")
    assert [(f.name, f.kind, f.task) for f in contracts.fields] == [
        ("effective_date", "date", "extract_contract"),
        ("term", "text", "extract_contract"),
        ("renewal_terms", "text", "extract_contract"),
        ("notice_period", "text", "extract_contract"),
        ("payment_terms", "text", "extract_contract"),
        ("governing_law", "text", "extract_contract"),
    ]
    assert contracts.taxonomy("payment_terms") is None
    assert REVIEW_THRESHOLDS["extract_contract"] == 0.6
    assert contracts.override_value("payment_terms", " net 45 days ") == "net 45 days"
    assert contracts.override_value("effective_date", "2026-02-01") == "2026-02-01"
    with pytest.raises(DecisionError, match="effective_date: '01/02/2026' is not a date"):
        contracts.override_value("effective_date", "01/02/2026")
    with pytest.raises(DecisionError, match=r"notice_period: the text holds personal data"):
        contracts.override_value("notice_period", "30 days' notice to legal@acme.example")
    with pytest.raises(DecisionError, match="has no reviewed field 'payment_days'"):
        contracts.override_value("payment_days", "45")
