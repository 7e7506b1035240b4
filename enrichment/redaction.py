"""Redaction of personal data before any text leaves the machine.

Names from the roster, e-mail addresses, phone numbers, national ids, bank and card numbers and
salary figures are replaced by typed placeholders. Placeholders are consistent within a record
(the same e-mail address is ``[EMAIL_1]`` every time it appears), so a summary still reads well,
and every redaction is counted so the row can say what was removed.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# Order matters: a pattern runs on the text left by the ones before it (e-mails contain names,
# IBANs contain digit runs that look like phone or card numbers).
PATTERNS: dict[str, str] = {
    "EMAIL": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "IBAN": r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){3,7}(?:[ ]?[A-Z0-9]{1,3})?\b",
    "NATIONAL_ID": r"\b\d{3}-\d{2}-\d{4}\b|\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
    # Card numbers as they are written: 13-19 digits in one run, in fours (4111 1111 1111 1111,
    # 4111-1111-1111-1111) or as Amex writes them (3782 822463 10005). Not any 13 digits with
    # dashes: a document id such as ER-20261204-90002 is not a card number.
    "CARD": (r"\b(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5})\b"),
    "BANK_ACCOUNT": (
        r"(?i)\b(?:account|acct|a/c|routing|sort code)\b[\s:#no.]{0,6}(?P<value>\d[\d -]{4,20}\d)"
    ),
    "PHONE": r"(?:\+\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b",
    "SALARY": (
        # "salary ... USD 85,000": the words that always mean pay may sit a few words before it.
        r"(?i)\b(?:salary|salaries|compensation)\b[^\d\n.;]{0,40}?"
        r"(?P<pay>(?:[A-Z]{3}\s?)?[$£€]?\s?\d[\d,]*(?:\.\d+)?(?:\s?[kK]\b)?)"
        r"|\b(?:salary|wages?|pay|paid|earns?|earning|compensation|bonus|rate)\b"
        r"(?:\s+(?:of|is|was|at|to))?:?\s*(?P<value>[$£€]?\s?\d[\d,]*(?:\.\d+)?(?:\s?[kK]\b)?)"
        r"|(?P<amount>[$£€]\s?\d{2,3}(?:,\d{3})+(?:\.\d{2})?)(?=\s*(?:per|a|/)\s*(?:year|annum|yr))"
    ),
}
# What must remain for a record to be worth sending after redaction.
MIN_CONTENT_WORDS = 3
_PLACEHOLDER = re.compile(r"\[[A-Z_]+_\d+\]")
_WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass
class Redaction:
    """Redacted text, and how many values of each kind were replaced."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def has_content(self) -> bool:
        """Whether enough words remain, outside placeholders, to be worth enriching."""
        return len(_WORD.findall(_PLACEHOLDER.sub(" ", self.text))) >= MIN_CONTENT_WORDS


class Redactor:
    """Replaces personal data with consistent, typed placeholders."""

    def __init__(self, names: Iterable[str] = (), kinds: Iterable[str] | None = None) -> None:
        """``kinds``: the ``PATTERNS`` to apply (all when None); roster ``names`` always are."""
        # Longest names first, so "Mary Ann Lee" wins over "Mary Ann".
        cleaned = sorted(
            {n.strip() for n in names if n and len(n.strip()) >= 3}, key=len, reverse=True
        )
        variants: list[str] = []
        # Every spelling of a person maps to one canonical name, so one person is one placeholder.
        self._canonical: dict[str, str] = {}
        for name in cleaned:
            spellings = [name]
            parts = name.split()
            if len(parts) >= 2:  # "Doe, Jane" as exports often write it
                spellings.append(f"{parts[-1]}, {' '.join(parts[:-1])}")
            for spelling in spellings:
                variants.append(re.escape(spelling))
                self._canonical.setdefault(spelling.lower(), name.lower())
        self._names = re.compile(r"(?i)\b(?:" + "|".join(variants) + r")\b") if variants else None
        chosen = set(PATTERNS) if kinds is None else set(kinds)
        unknown = chosen - set(PATTERNS)
        if unknown:
            raise ValueError(f"unknown redaction kinds: {sorted(unknown)}")
        self._patterns = [(kind, re.compile(p)) for kind, p in PATTERNS.items() if kind in chosen]

    def _key(self, kind: str, value: str) -> str:
        """What makes two matches the same value: one person, one number however written."""
        if kind == "PERSON":
            return self._canonical.get(value.lower(), value.lower())
        digits = re.sub(r"\D", "", value)
        if kind == "PHONE":
            return digits[-10:]
        return digits or value.lower()

    def redact(self, text: str | None) -> Redaction:
        """Redact one record's text."""
        if not text:
            return Redaction(text or "")
        seen: dict[tuple[str, str], str] = {}
        counts: dict[str, int] = {}

        def substitute(kind: str):
            def replace(match: re.Match) -> str:
                # Patterns that need context ("salary of …") name the part to redact.
                group = next((g for g in ("pay", "value", "amount") if match.groupdict().get(g)), 0)
                value = match.group(group).strip()
                key = (kind, self._key(kind, value))
                if key not in seen:
                    n = sum(1 for k in seen if k[0] == kind) + 1
                    seen[key] = f"[{kind}_{n}]"
                counts[kind] = counts.get(kind, 0) + 1
                start, end = match.span(group)
                whole_start = match.start(0)
                text = match.group(0)
                return text[: start - whole_start] + seen[key] + text[end - whole_start :]

            return replace

        if self._names is not None:
            text = self._names.sub(substitute("PERSON"), text)
        for kind, pattern in self._patterns:
            text = pattern.sub(substitute(kind), text)
        return Redaction(text, counts)
