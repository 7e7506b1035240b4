"""Declared contracts of the landing sources: columns, types, keys and sensitive columns.

A contract is what the source system promised to export. Bronze reads every declared column as a
string (so nothing is lost to a failed cast), silver casts to ``silver_type`` and rejects what does
not fit, with a reason.
"""

from dataclasses import dataclass

from pyspark.sql.types import StringType, StructField, StructType

CORRUPT_RECORD_COLUMN = "_corrupt_record"
FILE_FORMATS = ("csv", "jsonl", "parquet")


@dataclass(frozen=True)
class Column:
    """A declared column: name, silver type (Spark SQL DDL), required, personal data or not."""

    name: str
    silver_type: str = "string"
    required: bool = False
    sensitive: bool = False


@dataclass(frozen=True)
class SourceContract:
    """What one landing source exports: its columns, business key and file format.

    ``file_format`` is ``csv``, ``jsonl`` or ``parquet``. ``lands_daily`` is False for sources that
    land only on some dates (payroll on pay dates): a date without files is then an empty partition,
    not an error. ``amount_columns`` are converted to USD in silver at the business date's rate
    (``currency_column`` names the currency); a row whose currency has no rate that day is
    quarantined with ``MISSING_FX_RATE``, never guessed. A delivery (file) whose content repeats
    one already landed is quarantined ``DUPLICATE_FILE``, unless ``deliveries_may_repeat`` (a daily
    snapshot may equal yesterday's when nothing changed).
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    file_format: str = "csv"
    lands_daily: bool = True
    amount_columns: tuple[str, ...] = ()
    currency_column: str | None = None
    deliveries_may_repeat: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.file_format not in FILE_FORMATS:
            raise ValueError(f"{self.name}: file_format must be one of {FILE_FORMATS}")
        names = self.column_names
        missing = [c for c in (*self.key, *self.amount_columns) if c not in names]
        if self.currency_column:
            missing += [c for c in (self.currency_column,) if c not in names]
        if missing:
            raise ValueError(f"{self.name}: key/amount/currency columns not declared: {missing}")

    @property
    def column_names(self) -> list[str]:
        """Declared column names, in export order."""
        return [c.name for c in self.columns]

    @property
    def sensitive_columns(self) -> list[str]:
        """Columns holding personal data: redacted before any text leaves the machine."""
        return [c.name for c in self.columns if c.sensitive]

    def column(self, name: str) -> Column:
        """The declared column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} declares no column {name!r}")

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
    amount_columns=("amount",),
    currency_column="currency",
    description="Expense report lines submitted by employees (one file per business date).",
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

# --- Finance ---------------------------------------------------------------------------------

GL_JOURNAL_LINES = SourceContract(
    name="gl_journal_lines",
    columns=(
        Column("journal_id", required=True),
        Column("line_number", "int", required=True),
        Column("legal_entity", required=True),
        Column("posting_date", "date", required=True),
        Column("account", required=True),
        Column("cost_centre"),
        Column("debit", "decimal(18,2)", required=True),
        Column("credit", "decimal(18,2)", required=True),
        Column("currency", required=True),
        Column("description"),
        Column("source_system", required=True),
        # The document the line posts (bank reference, AP invoice or payment id); null for manual
        # journals.
        Column("reference"),
    ),
    key=("journal_id", "line_number"),
    amount_columns=("debit", "credit"),
    currency_column="currency",
    description="General-ledger journal lines posted on the business date, all entities.",
)

AP_INVOICES = SourceContract(
    name="ap_invoices",
    columns=(
        Column("invoice_id", required=True),
        Column("legal_entity", required=True),
        Column("vendor_id", required=True),
        Column("vendor_name"),
        Column("invoice_date", "date", required=True),
        Column("due_date", "date"),
        Column("amount", "decimal(18,2)", required=True),
        Column("currency", required=True),
        Column("memo"),
        Column("po_number"),
        Column("status", required=True),
    ),
    key=("invoice_id",),
    amount_columns=("amount",),
    currency_column="currency",
    description="AP subledger invoices entered on the business date.",
)

AP_PAYMENTS = SourceContract(
    name="ap_payments",
    columns=(
        Column("payment_id", required=True),
        Column("invoice_id", required=True),
        Column("legal_entity", required=True),
        Column("vendor_id", required=True),
        Column("vendor_name"),
        Column("payment_date", "date", required=True),
        Column("amount", "decimal(18,2)", required=True),
        Column("currency", required=True),
        Column("memo"),
        Column("status", required=True),
    ),
    key=("payment_id",),
    amount_columns=("amount",),
    currency_column="currency",
    description="AP subledger payments (full or partial) released on the business date.",
)

BANK_STATEMENT_LINES = SourceContract(
    name="bank_statement_lines",
    columns=(
        Column("bank_account", required=True),
        Column("statement_line_id", required=True),
        Column("value_date", "date", required=True),
        # Signed: money in is positive, money out negative.
        Column("amount", "decimal(18,2)", required=True),
        Column("currency", required=True),
        Column("counterparty", sensitive=True),
        Column("reference"),
        Column("narrative", sensitive=True),
    ),
    key=("bank_account", "statement_line_id"),
    file_format="parquet",
    amount_columns=("amount",),
    currency_column="currency",
    description="Bank statement lines (camt.053-like extract) for the business date, per account.",
)

FX_RATES = SourceContract(
    name="fx_rates",
    columns=(
        Column("rate_date", "date", required=True),
        Column("currency", required=True),
        # Units of USD per one unit of ``currency``.
        Column("rate_to_usd", "decimal(18,8)", required=True),
        Column("source"),
    ),
    key=("rate_date", "currency"),
    file_format="jsonl",
    description="Daily closing rates to the reporting currency (USD).",
)

# --- HR ---------------------------------------------------------------------------------------

HRIS_ROSTER = SourceContract(
    name="hris_roster",
    columns=(
        Column("employee_id", required=True),
        Column("name", required=True, sensitive=True),
        Column("email", sensitive=True),
        Column("legal_entity", required=True),
        Column("department"),
        Column("cost_centre"),
        Column("title"),
        Column("location"),
        Column("hire_date", "date"),
        Column("termination_date", "date"),
        Column("status", required=True),
        Column("manager_id"),
        Column("annual_salary", "decimal(18,2)", sensitive=True),
        Column("currency"),
    ),
    key=("employee_id",),
    # A snapshot: on a quiet day it is the same as yesterday's, and that is no repeat.
    deliveries_may_repeat=True,
    description="HRIS roster: a full snapshot of every employee as of the business date.",
)

PAYROLL_REGISTER = SourceContract(
    name="payroll_register",
    columns=(
        Column("payment_id", required=True),
        Column("pay_period_start", "date", required=True),
        Column("pay_period_end", "date", required=True),
        Column("employee_id", required=True, sensitive=True),
        Column("legal_entity", required=True),
        Column("gross", "decimal(18,2)", required=True, sensitive=True),
        Column("taxes", "decimal(18,2)", required=True, sensitive=True),
        Column("deductions", "decimal(18,2)", required=True, sensitive=True),
        Column("net", "decimal(18,2)", required=True, sensitive=True),
        Column("currency", required=True),
        Column("pay_date", "date", required=True),
    ),
    key=("payment_id",),
    lands_daily=False,
    amount_columns=("gross", "net"),
    currency_column="currency",
    description="Payroll register of the pay run paid on the business date (pay dates only).",
)

HR_CASES = SourceContract(
    name="hr_cases",
    columns=(
        Column("case_id", required=True),
        Column("opened_at", "timestamp", required=True),
        Column("employee_id", sensitive=True),
        Column("channel"),
        Column("subject", sensitive=True),
        Column("description", sensitive=True),
    ),
    key=("case_id",),
    file_format="jsonl",
    lands_daily=False,
    description="HR cases opened on the business date; free text contains personal data.",
)

CONTRACTS: dict[str, SourceContract] = {
    c.name: c
    for c in (
        GL_JOURNAL_LINES,
        AP_INVOICES,
        AP_PAYMENTS,
        BANK_STATEMENT_LINES,
        EXPENSE_LINES,
        FX_RATES,
        HRIS_ROSTER,
        PAYROLL_REGISTER,
        HR_CASES,
    )
}
