"""Patterns of personal data that must never appear in generated text (summaries, rationales)."""

PII_PATTERNS = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "phone": r"(\+?\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}",
    "us_ssn": r"\b\d{3}-\d{2}-\d{4}\b",
    "card_or_account_number": r"\b(?:\d[ -]?){13,19}\b",
}
