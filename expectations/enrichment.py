"""Rules every enriched output must meet, whichever table carries it.

One enrichment outcome is a label (or summary) column plus its provenance (``enrichment_status``,
``model``, a confidence). Tables with two outcomes prefix the second's provenance columns.
"""

from enrichment.models import STATUSES, Taxonomy
from expectations.gx import expect
from expectations.pii import PII_PATTERNS
from expectations.suite import ERROR, WARN, Rule


def label_rules(label: str, confidence: str, taxonomy: Taxonomy, prefix: str = "") -> list[Rule]:
    """The label is in the taxonomy, its confidence a probability, its provenance recorded."""
    return [
        Rule(
            f"{label}_in_taxonomy",
            ERROR,
            f"Every {label} is one of the declared {taxonomy.name} labels.",
            expect.ExpectColumnValuesToBeInSet(column=label, value_set=taxonomy.names),
        ),
        Rule(
            f"{prefix}enrichment_status_known",
            ERROR,
            f"Every row says what became of its {label} enrichment.",
            expect.ExpectColumnValuesToBeInSet(
                column=f"{prefix}enrichment_status", value_set=list(STATUSES)
            ),
        ),
        Rule(
            f"{confidence}_is_probability",
            ERROR,
            "Confidence is between 0 and 1.",
            expect.ExpectColumnValuesToBeBetween(column=confidence, min_value=0, max_value=1),
        ),
        Rule(
            f"{prefix}provenance_model_recorded",
            ERROR,
            f"Every row names the model or rule that produced its {label}.",
            expect.ExpectColumnValuesToNotBeNull(column=f"{prefix}model"),
        ),
    ]


def summary_rules(column: str, max_chars: int) -> list[Rule]:
    """A summary is bounded and carries no personal data the patterns can see."""
    return [
        Rule(
            "summary_length_bounded",
            ERROR,
            f"Summaries are 1 to {max_chars} characters.",
            expect.ExpectColumnValueLengthsToBeBetween(
                column=column, min_value=1, max_value=max_chars
            ),
        ),
        Rule(
            "summary_has_no_personal_data",
            ERROR,
            "No e-mail address, phone number, national id or card number in a summary.",
            expect.ExpectColumnValuesToNotMatchRegexList(
                column=column, regex_list=list(PII_PATTERNS.values())
            ),
        ),
    ]


def availability_rules(
    what: str, max_failed_share: float, max_fallback_share: float, prefix: str = "", name: str = ""
) -> list[Rule]:
    """A failed night is not published as a fine one: the share of rows left ``failed`` (no
    answer, no fallback) above ``max_failed_share`` blocks the partition; the share answered by
    the offline fallback because the LLM did not (``failure_kind`` = fallback) above
    ``max_fallback_share`` publishes it with a warning. Rule names start with ``name``, columns
    with ``prefix``.
    """
    return [
        Rule(
            f"{name}failed_share",
            ERROR,
            f"At most {max_failed_share:.0%} of rows have no {what}: neither the LLM nor the "
            "fallback answered.",
            expect.ExpectColumnValuesToNotBeInSet(
                column=f"{prefix}enrichment_status",
                value_set=["failed"],
                mostly=1 - max_failed_share,
            ),
        ),
        Rule(
            f"{name}fallback_share",
            WARN,
            f"At most {max_fallback_share:.0%} of rows have their {what} from the offline "
            "fallback because the LLM was unavailable.",
            expect.ExpectColumnValuesToNotBeInSet(
                column=f"{prefix}failure_kind",
                value_set=["fallback"],
                mostly=1 - max_fallback_share,
            ),
        ),
    ]
