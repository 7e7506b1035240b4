"""A person's free value (a field without a taxonomy): what the ledger accepts and keeps."""

import pytest

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
