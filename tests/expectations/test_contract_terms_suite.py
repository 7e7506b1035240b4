"""The gold_contract_terms suite on a few inline contracts: what blocks, what warns."""

from expectations.contract_terms import gold_contract_terms_suite
from expectations.runner import validate
from transforms.frames import local_frame

SCHEMA = (
    "file_name string, document_sha256 string, enrichment_status string, model string, "
    "confidence double, payment_days int, term string, renewal_terms string, "
    "notice_period string, payment_terms string, governing_law string, "
    "parties array<struct<name:string,role:string,confidence:double>>, "
    "fields array<struct<field:string,confidence:double>>"
)
PARTIES = [("Corporate Services Inc.", "Customer", 0.7), ("Acme Office Supply", "Supplier", 0.7)]
READ = [("effective_date", 0.8), ("payment_terms", 0.8)]


def contract(name: str, **changes) -> tuple:
    row = {
        "file_name": name,
        "document_sha256": f"h-{name}",
        "enrichment_status": "ok",
        "model": "embedded/contract-rules-v1",
        "confidence": 0.78,
        "payment_days": 45,
        "term": "two (2) years",
        "renewal_terms": "It renews automatically.",
        "notice_period": "ninety (90) days' prior written notice",
        "payment_terms": "net 45 days",
        "governing_law": "State of New York",
        "parties": PARTIES,
        "fields": READ,
    } | changes
    return tuple(row.values())


def test_contracts_without_their_terms_or_with_personal_data_are_refused(spark):
    good = [contract(f"c{i}.pdf") for i in range(2)]
    # Two of six without their terms (nothing read; a term below the confidence asked) block,
    # as do an e-mail address in a term and a payment term that is no number of days.
    unread = contract("scan.pdf", payment_days=None, payment_terms=None, parties=None, fields=None)
    unsure = contract("unsure.pdf", fields=[("effective_date", 0.8), ("payment_terms", 0.3)])
    email = contract("email.pdf", notice_period="notice to jane.roe@acme.example in writing")
    misread = contract("misread.pdf", payment_days=2026)
    rows = [*good, unread, unsure, email, misread]
    report = validate(local_frame(spark, rows, SCHEMA), gold_contract_terms_suite())
    failed = {r.name: r for r in report.results if not r.success}
    assert {r.name for r in report.blocking_failures} == {
        "required_terms_present",
        "no_personal_data_in_terms",
        "payment_days_is_a_term",
    }
    # Any incomplete contract also warns, naming it.
    incomplete = failed["every_contract_complete"].offending_keys
    assert sorted(k["file_name"] for k in incomplete) == ["scan.pdf", "unsure.pdf"]
