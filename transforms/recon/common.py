"""The shapes every reconciliation returns, and the helpers they share.

A reconciliation of business date ``D`` returns two DataFrames:

- **matches** (``MATCH_COLUMNS``): one row per match group, with the rule that matched it and the
  records on each side;
- **open exceptions** (``EXCEPTION_COLUMNS`` with ``status = 'open'``): what is unexplained as of
  ``D``. ``carry_forward`` then compares them with the exceptions open as of ``D - 1`` and adds the
  ones that closed on ``D``.

A record is named ``"<source>:<business key joined by |>"`` (``record_id``), so an exception says
exactly which rows of which silver tables it involves.
"""

from pyspark.sql import Column
from pyspark.sql import functions as F

RECONS = ("bank_gl", "ap_gl", "payroll_hris", "expense_policy")

MATCH_COLUMNS = [
    "business_date",  # date: the night the match was made (as-of date)
    "recon",  # string: one of RECONS
    "match_id",  # string: sha256 of recon + sorted record ids
    "rule",  # string: the rule that matched the group (e.g. REFERENCE, AMOUNT_DATE_WINDOW)
    "legal_entity",  # string
    "left_records",  # array<string>: record ids on the left side (bank, AP subledger)
    "right_records",  # array<string>: record ids on the right side (GL)
    "left_amount",  # decimal(18,2): sum of the left side, in ``currency``
    "right_amount",  # decimal(18,2): sum of the right side, in ``currency``
    "currency",  # string
    "amount_usd",  # decimal(18,2): left amount at the as-of date's rate
    "matched_on",  # date: the business date the group became complete (its newest record)
]

EXCEPTION_COLUMNS = [
    "business_date",  # date: the as-of date (the night that reports it)
    "exception_id",  # string: sha256 of recon + exception_type + sorted records; stable across nights
    "recon",  # string: one of RECONS
    "exception_type",  # string: see docs/RECONCILIATIONS.md
    "legal_entity",  # string
    "status",  # string: open | closed
    "resolution",  # string: null while open; matched | superseded | aged_out once closed
    "first_seen_date",  # date: the oldest business_date among its records
    "closed_on",  # date: null while open; the as-of date it closed
    "age_days",  # int: business_date - first_seen_date
    "amount",  # decimal(18,2): the unexplained amount (signed), in ``currency``
    "currency",  # string
    "amount_usd",  # decimal(18,2)
    "records",  # array<string>: record ids involved, sorted
    "rule",  # string: the rule that raised it
    "detail",  # string: one analyst-readable sentence built from the data (no LLM)
]


def record_id(source: str, *key_columns: str) -> Column:
    """``"<source>:<key1>|<key2>"`` for the row: how exceptions and matches name records."""
    parts = [F.coalesce(F.col(c).cast("string"), F.lit("")) for c in key_columns]
    return F.concat(F.lit(f"{source}:"), F.concat_ws("|", *parts))


def group_id(recon: str, tag: Column | str, records: Column) -> Column:
    """A stable id for a set of records: sha256 of recon, a tag and the sorted record ids."""
    tag_col = F.lit(tag) if isinstance(tag, str) else tag
    return F.sha2(
        F.concat_ws("\u001f", F.lit(recon), tag_col, F.concat_ws(",", F.array_sort(records))), 256
    )
