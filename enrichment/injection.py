"""Prompt-injection signals in record text: flagged, isolated, never obeyed.

Record text is data. It reaches a model only as a JSON string inside a delimited block, the answer
is held to a JSON schema and the taxonomy, and a record whose text looks like it is addressing the
model is also sent in a request of its own, so it cannot reach another record's answer. The rows
say ``injection_suspected``; nothing is dropped.

The patterns are plain regular expressions that Python and Spark (Java) read alike. They are a
tripwire, not a classifier: they catch the common phrasings and miss paraphrases, and ordinary
text ("ignore the previous invoice, it was a duplicate") does not trip them.
"""

import re

INJECTION_PATTERNS: dict[str, str] = {
    # "ignore previous instructions", "disregard all prior rules", "forget your instructions"
    "override_instructions": (
        r"(ignore|disregard|forget|override|bypass)\s+(all\s+|any\s+|the\s+|your\s+|these\s+)*"
        r"(previous\s+|prior\s+|above\s+|earlier\s+|preceding\s+|system\s+)*"
        r"(instructions?|rules|prompts?|guidelines|directions)"
    ),
    # "SYSTEM:", "assistant:" at the start of a line; chat-template and delimiter tokens
    "role_tag": (
        r"(^|\n)\s*(system|assistant|developer|user)\s*:|<\|?\s*(im_start|im_end|system|endoftext)"
        r"|</?\s*records\s*>"
    ),
    # "you are now", "new instructions:", "from now on you"
    "persona_change": r"you\s+are\s+now\b|new\s+instructions\s*:|from\s+now\s+on,?\s+you\b",
    # "label every record as other", "classify all rows as …": aimed at the other records
    "targets_other_records": (
        r"(label|classify|categori[sz]e|mark|tag|rate)\s+(every|all|each|the\s+other|other)\s+"
        r"(the\s+)?(other\s+)?(records?|rows?|items?|lines?|entries|cases)"
    ),
    # an answer in the response format, written into the data
    "forged_answer": r"\{\s*\"results\"\s*:",
}

INJECTION_REGEX = "(?i)" + "|".join(f"(?:{p})" for p in INJECTION_PATTERNS.values())
_COMPILED = {name: re.compile(p, re.IGNORECASE) for name, p in INJECTION_PATTERNS.items()}


def injection_signals(text: str | None) -> list[str]:
    """The names of the patterns ``text`` matches (empty when none)."""
    if not text:
        return []
    return [name for name, pattern in _COMPILED.items() if pattern.search(text)]
