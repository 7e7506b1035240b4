"""Declared contracts of the landing sources: columns, types, keys and sensitive columns.

A contract is what the source system promised to export. Bronze reads every declared column as a
string (so nothing is lost to a failed cast), silver casts to ``silver_type`` and rejects what does
not fit, with a reason.
"""

from dataclasses import dataclass

from pyspark.sql.types import StringType, StructField, StructType

CORRUPT_RECORD_COLUMN = "_corrupt_record"


@dataclass(frozen=True)
class Column:
    """A declared column: name, silver type (Spark SQL DDL), required, personal data or not."""

    name: str
    silver_type: str = "string"
    required: bool = False
    sensitive: bool = False


@dataclass(frozen=True)
class SourceContract:
    """What one landing source exports: its columns, business key and file format."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    file_format: str = "csv"

    @property
    def column_names(self) -> list[str]:
        """Declared column names, in export order."""
        return [c.name for c in self.columns]

    def landing_schema(self) -> StructType:
        """All-string schema used to read the raw files, plus the corrupt-record column."""
        fields = [StructField(c.name, StringType(), True) for c in self.columns]
        return StructType([*fields, StructField(CORRUPT_RECORD_COLUMN, StringType(), True)])


EXPENSE_LINES = SourceContract(
    name="expense_lines",
    columns=(
        Column("report_id", required=True),
        Column("line_id", "int", required=True),
        Column("employee_id", required=True, sensitive=True),
        Column("transaction_date", "date", required=True),
        Column("merchant", required=True),
        Column("amount", "decimal(18,2)", required=True),
        Column("currency", required=True),
        Column("claimed_category"),
        Column("justification", sensitive=True),
    ),
    key=("report_id", "line_id"),
)

# ISO 4217 codes the group transacts in; anything else is quarantined, not guessed.
VALID_CURRENCIES = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "CAD",
        "SGD",
        "JPY",
        "CHF",
        "AUD",
        "NZD",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "CZK",
        "HUF",
        "INR",
        "CNY",
        "HKD",
        "MXN",
        "BRL",
        "ZAR",
        "AED",
    ]
)

# Expense claims outside (0, MAX] are out of range: refunds arrive through AP, not expenses.
MAX_EXPENSE_AMOUNT = 100_000
# A claim older than this (days before the business date) is out of range.
MAX_EXPENSE_AGE_DAYS = 365
