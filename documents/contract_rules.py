"""The embedded offline contract extractor: a few phrase patterns over the page text.

Cheap coverage only, English only, each value with its page and span and ``source = rule``:

* ``governing_law``: "governed by (and construed in accordance with) the laws of X";
* ``effective_date``: "Effective Date: <date>", "effective as of <date>", "dated <date>";
* ``term``: "for a (initial) term of <N> (months|years)", "Term: ...";
* ``renewal_terms``: the sentence that says the contract "renew(s)" / "renewal";
* ``notice_period``: "<N> days' (prior) (written) notice";
* ``payment_terms``: "net <N> (days)", "within <N> days of (receipt of) (the) invoice";
* ``parties``: "between X ("Role") and Y ("Role")" in the opening.

Not covered: parties listed in a table or signature block, terms written out without these
phrases, other languages. What is not found stays None: the LLM is the way to read the rest.
"""

import re
from collections.abc import Sequence
from typing import Any

from documents.fields import ContractExtraction, Party
from documents.patterns import find_dates
from documents.text import PageText

MODEL_ID = "embedded/contract-rules-v1"
SOURCE = "rule"

CONF_PHRASE = 0.8
CONF_SENTENCE = 0.6
CONF_PARTY = 0.7

_GOVERNING_LAW = re.compile(
    r"governed\s+by(?:\s+and\s+construed\s+in\s+accordance\s+with)?\s+the\s+laws?\s+of\s+"
    r"(?:the\s+)?(?P<value>[A-Z][\w .,'-]{1,60}?)(?=[.,;\n]|\s+(?:without|and|excluding))",
    re.I,
)
_EFFECTIVE_LABEL = re.compile(
    r"effective\s+date\s*[:\-]?\s*|effective\s+(?:as\s+of|from|on)\s+|dated\s+(?:as\s+of\s+)?",
    re.I,
)
_TERM = re.compile(
    r"(?:for\s+an?\s+(?:initial\s+)?(?:term|period)\s+of|term\s*:)\s*"
    r"(?P<value>[\w ()-]{1,30}?\s*\(?\d*\)?\s*(?:months?|years?))",
    re.I,
)
_NOTICE = re.compile(
    r"(?P<value>(?:[A-Za-z-]+\s+\(\d+\)|\d+)\s+days[’']?\s+(?:prior\s+)?(?:written\s+)?notice)",
    re.I,
)
_PAYMENT = re.compile(
    r"(?P<value>net\s+\d+(?:\s+days)?|within\s+\w*\s*\(?\d+\)?\s+days\s+(?:of|from|after)\s+"
    r"(?:the\s+)?(?:receipt\s+of\s+)?(?:the\s+|an?\s+)?(?:invoice|invoice\s+date))",
    re.I,
)
_RENEW = re.compile(r"\brenew(?:s|ed|al)?\b", re.I)
_SENTENCE = re.compile(r"[^.\n]*(?:\n(?!\n)[^.\n]*)*\.?")
# Any quote mark around a role: OCR reads a straight quote as a curly one, either way round
# ("Supplier’) as often as not.
_Q = "[\"“”„'‘’`]"
_PARTIES = re.compile(
    rf"between\s+(?P<a>[A-Z][^()\n]{{1,80}}?)\s*\(\s*(?:the\s+)?{_Q}?(?P<ra>[A-Z][\w ]{{1,30}}?)"
    rf"{_Q}?\s*\)\s*,?\s*and\s+(?P<b>[A-Z][^()\n]{{1,80}}?)\s*\(\s*(?:the\s+)?{_Q}?"
    rf"(?P<rb>[A-Z][\w ]{{1,30}}?){_Q}?\s*\)",
    re.S,
)


def _field(page: PageText, start: int, end: int, confidence: float) -> dict[str, Any]:
    value = page.text[start:end]
    stripped = value.strip(" ,;:")
    start += value.find(stripped)
    return {
        "value": stripped,
        "confidence": confidence,
        "page": page.page,
        "start": start,
        "end": start + len(stripped),
        "source": SOURCE,
    }


def _first(pages: Sequence[PageText], pattern: re.Pattern[str], confidence: float):
    for page in pages:
        m = pattern.search(page.text)
        if m:
            return _field(page, m.start("value"), m.end("value"), confidence)
    return None


def _effective_date(pages: Sequence[PageText]) -> dict[str, Any] | None:
    for page in pages:
        for label in _EFFECTIVE_LABEL.finditer(page.text):
            window = page.text[label.end() : label.end() + 40]
            dates = find_dates(window)
            if dates and dates[0].start <= 2:
                found = dates[0]
                field = _field(
                    page, label.end() + found.start, label.end() + found.end, CONF_PHRASE
                )
                field["value"] = found.value
                return field
    return None


def _renewal(pages: Sequence[PageText]) -> dict[str, Any] | None:
    for page in pages:
        m = _RENEW.search(page.text)
        if m:
            start = max(page.text.rfind(".", 0, m.start()), page.text.rfind("\n\n", 0, m.start()))
            start = start + 1 if start >= 0 else 0
            end = page.text.find(".", m.end())
            end = len(page.text) if end == -1 else end + 1
            field = _field(page, start, end, CONF_SENTENCE)
            field["value"] = " ".join(field["value"].split())
            return field
    return None


def _parties(pages: Sequence[PageText]) -> tuple[Party, ...]:
    for page in pages:
        m = _PARTIES.search(page.text)
        if m:
            return tuple(
                Party(
                    name=" ".join(m.group(name).split()).strip(" ,"),
                    role=m.group(role).strip(),
                    confidence=CONF_PARTY,
                    page=page.page,
                    start=m.start(name),
                    end=m.start(name) + len(m.group(name).rstrip(" ,")),
                    source=SOURCE,
                )
                for name, role in (("a", "ra"), ("b", "rb"))
            )
    return ()


def extract_contract(pages: Sequence[PageText]) -> ContractExtraction:
    """The contract terms the phrase rules find in ``pages``, each with page, span, confidence."""
    fields = {
        "effective_date": _effective_date(pages),
        "term": _first(pages, _TERM, CONF_PHRASE),
        "renewal_terms": _renewal(pages),
        "notice_period": _first(pages, _NOTICE, CONF_PHRASE),
        "payment_terms": _first(pages, _PAYMENT, CONF_PHRASE),
        "governing_law": _first(pages, _GOVERNING_LAW, CONF_PHRASE),
    }
    return ContractExtraction(
        model=MODEL_ID,
        parties=_parties(pages),
        **{k: v for k, v in fields.items() if v is not None},
    )
