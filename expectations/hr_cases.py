"""Quality rules for enriched HR cases (``gold.hr_cases``), thresholds beside the rules."""

from enrichment.models import STATUSES
from enrichment.taxonomies import HR_CASE_TYPE, HR_CASE_URGENCY
from expectations.enrichment import availability_rules, label_rules, summary_rules
from expectations.gx import expect
from expectations.pii import PII_PATTERNS
from expectations.suite import ERROR, WARN, Rule, Suite
from transforms.hr_cases import KEY, URGENCY_PREFIX

SUMMARY_MAX_CHARS = 400
# Share of cases whose type or urgency may fail or be skipped before the partition warns.
MAX_UNENRICHED_SHARE = 0.05
# Share of cases left without a type (or urgency) by the LLM and the fallback that blocks.
MAX_FAILED_SHARE = 0.20
# Share of cases whose type (or urgency) came from the offline fallback before it warns.
MAX_FALLBACK_SHARE = 0.05

NOT_NULL_COLUMNS = ("case_id", "business_date", "opened_at", "model", "urgency_model")
_STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)
CONSTRAINTS = {
    "case_type_confidence_is_probability": "case_type_confidence IS NULL OR "
    "(case_type_confidence >= 0 AND case_type_confidence <= 1)",
    "urgency_confidence_is_probability": "urgency_confidence IS NULL OR "
    "(urgency_confidence >= 0 AND urgency_confidence <= 1)",
    "known_enrichment_status": f"enrichment_status IN ({_STATUS_LIST}) "
    f"AND urgency_enrichment_status IN ({_STATUS_LIST})",
    "ok_rows_have_a_label": "(enrichment_status <> 'ok' OR case_type IS NOT NULL) "
    "AND (urgency_enrichment_status <> 'ok' OR urgency IS NOT NULL)",
}


def gold_hr_cases_suite() -> Suite:
    """What an enriched partition of HR cases must meet before it is published."""
    rules = [
        Rule(
            "case_id_not_null",
            ERROR,
            "Every case has its id.",
            expect.ExpectColumnValuesToNotBeNull(column="case_id"),
        ),
        Rule(
            "case_id_unique",
            ERROR,
            "One row per case.",
            expect.ExpectColumnValuesToBeUnique(column="case_id"),
        ),
        Rule(
            "opened_at_not_null",
            ERROR,
            "Every case says when it was opened.",
            expect.ExpectColumnValuesToNotBeNull(column="opened_at"),
        ),
        *label_rules("case_type", "case_type_confidence", HR_CASE_TYPE),
        *label_rules("urgency", "urgency_confidence", HR_CASE_URGENCY, prefix=URGENCY_PREFIX),
        *summary_rules("case_summary", SUMMARY_MAX_CHARS),
        Rule(
            "urgency_rationale_has_no_personal_data",
            ERROR,
            "No e-mail address, phone number, national id or card number in a rationale.",
            expect.ExpectColumnValuesToNotMatchRegexList(
                column="urgency_rationale", regex_list=list(PII_PATTERNS.values())
            ),
        ),
    ]
    for prefix, what in (("", "type"), (URGENCY_PREFIX, "urgency")):
        rules.append(
            Rule(
                f"{prefix or 'case_type_'}enriched_share",
                WARN,
                f"At most {MAX_UNENRICHED_SHARE:.0%} of cases have no {what}.",
                expect.ExpectColumnValuesToBeInSet(
                    column=f"{prefix}enrichment_status",
                    value_set=["ok"],
                    mostly=1 - MAX_UNENRICHED_SHARE,
                ),
            )
        )
        rules += availability_rules(
            f"case {what}",
            MAX_FAILED_SHARE,
            MAX_FALLBACK_SHARE,
            prefix=prefix,
            name=prefix or "case_type_",
        )
    return Suite(name="gold_hr_cases", key=KEY, rules=tuple(rules))


def all_rule_names() -> list[tuple[str, str, str]]:
    """Every (name, severity, description) an audit can report, for Dagster check specs."""
    return [(r.name, r.severity, r.description) for r in gold_hr_cases_suite().rules]
