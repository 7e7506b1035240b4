"""Personal data that must never appear in generated text (summaries, rationales).

The same patterns the redactor removes before text leaves the machine (``enrichment/redaction.py``),
minus those that need context to tell (salary figures) and in syntax Spark's regex engine shares.
"""

from enrichment.redaction import PATTERNS

PII_PATTERNS = {kind: PATTERNS[kind] for kind in ("EMAIL", "IBAN", "NATIONAL_ID", "CARD", "PHONE")}
