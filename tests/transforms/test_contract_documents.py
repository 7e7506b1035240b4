"""Contract terms in Spark: the payment terms as a number of days."""

from transforms.contract_documents import payment_days
from transforms.frames import local_frame


def test_payment_days_reads_the_first_number_of_the_terms_and_nothing_else(spark):
    terms = [
        ("net 30", 30),
        ("Net 45 days", 45),
        ("within thirty (30) days of receipt of the invoice", 30),
        ("payable on receipt", None),
        ("net 0", None),
        ("within 2026 days", None),
        (None, None),
    ]
    df = local_frame(spark, [(t,) for t, _ in terms], "terms string")
    got = [r[0] for r in df.select(payment_days("terms")).collect()]
    assert got == [n for _, n in terms]
