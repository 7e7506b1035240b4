"""Schema drift: added, missing, renamed and retyped columns against a declared contract."""

import json

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from transforms.contracts import EXPENSE_LINES, Column, SourceContract
from transforms.drift import DriftReport, SchemaDriftError, detect_drift


def strings(*names: str) -> StructType:
    """A CSV-like schema: every column a string."""
    return StructType([StructField(n, StringType()) for n in names])


def declared() -> list[str]:
    return EXPENSE_LINES.column_names


def test_no_drift_when_the_file_matches_and_reader_columns_are_ignored():
    observed = strings(*declared(), "_corrupt_record", "_source_file")
    report = detect_drift(EXPENSE_LINES, observed)
    assert report == DriftReport("expense_lines", (), (), (), ())
    assert not report.has_drift
    assert not report.breaking
    assert report.describe() == "expense_lines: no schema drift."


def test_added_column_is_drift_but_not_breaking():
    report = detect_drift(EXPENSE_LINES, strings(*declared(), "cost_centre"))
    assert report.added == ("cost_centre",)
    assert report.missing == ()
    assert report.has_drift
    assert not report.breaking


def test_missing_optional_column_is_not_breaking():
    names = [c for c in declared() if c != "justification"]
    report = detect_drift(EXPENSE_LINES, strings(*names))
    assert report.missing == ("justification",)
    assert report.missing_required == ()
    assert report.has_drift
    assert not report.breaking


def test_missing_required_column_is_breaking():
    names = [c for c in declared() if c != "currency"]
    report = detect_drift(EXPENSE_LINES, strings(*names))
    assert report.missing == ("currency",)
    assert report.missing_required == ("currency",)
    assert report.breaking


def test_renames_found_by_normalised_name_and_by_similarity():
    names = ["Amount " if c == "amount" else c for c in declared()]
    names = ["merchant_nm" if c == "merchant" else c for c in names]
    report = detect_drift(EXPENSE_LINES, strings(*names))
    assert report.missing == ("merchant", "amount")
    assert report.added == ("merchant_nm", "Amount ")
    assert report.renamed == (("merchant", "merchant_nm"), ("amount", "Amount "))
    assert report.breaking  # both are required: a rename is still a missing column


def test_unrelated_names_are_not_called_renames():
    names = [c for c in declared() if c != "claimed_category"]
    report = detect_drift(EXPENSE_LINES, strings(*names, "vat_code"))
    assert report.missing == ("claimed_category",)
    assert report.added == ("vat_code",)
    assert report.renamed == ()


def test_case_only_difference_is_drift():
    names = ["Currency" if c == "currency" else c for c in declared()]
    report = detect_drift(EXPENSE_LINES, strings(*names))
    assert report.renamed == (("currency", "Currency"),)


def test_retyped_columns_in_a_parquet_like_schema():
    contract = SourceContract(
        name="typed",
        columns=(*EXPENSE_LINES.columns, Column("opened_at", "timestamp")),
        key=("report_id", "line_id"),
    )
    types = {
        "report_id": LongType(),  # declared string: any atomic type is fine
        "line_id": DateType(),  # int from a date: retyped
        "employee_id": StringType(),
        "transaction_date": IntegerType(),  # date from a number: retyped
        "merchant": StringType(),
        "amount": BooleanType(),  # decimal from a boolean: retyped
        "currency": StringType(),
        "claimed_category": ArrayType(StringType()),  # string from an array: retyped
        "justification": StringType(),
        "opened_at": TimestampType(),
    }
    observed = StructType([StructField(n, t) for n, t in types.items()])
    report = detect_drift(contract, observed)
    assert report.retyped == (
        ("line_id", "int", "date"),
        ("transaction_date", "date", "int"),
        ("amount", "decimal(18,2)", "boolean"),
        ("claimed_category", "string", "array<string>"),
    )
    assert report.breaking


def test_faithful_types_are_not_retyped():
    types = {c: StringType() for c in declared()}
    types.update(
        line_id=IntegerType(),
        transaction_date=TimestampType(),
        amount=DecimalType(10, 2),
    )
    observed = StructType([StructField(n, t) for n, t in types.items()])
    assert detect_drift(EXPENSE_LINES, observed).retyped == ()
    types.update(amount=DoubleType(), line_id=LongType(), transaction_date=DateType())
    observed = StructType([StructField(n, t) for n, t in types.items()])
    assert not detect_drift(EXPENSE_LINES, observed).has_drift


def test_describe_lists_everything_in_one_sentence():
    names = [c for c in declared() if c not in ("amount", "justification")]
    observed = StructType(
        [
            *[StructField(n, BooleanType() if n == "line_id" else StringType()) for n in names],
            StructField("Amount ", StringType()),
            StructField("vat_code", StringType()),
        ]
    )
    report = detect_drift(EXPENSE_LINES, observed)
    assert report.describe() == (
        "expense_lines: breaking schema drift: missing required column(s) 'amount'; "
        "missing optional column(s) 'justification'; added column(s) 'Amount ', 'vat_code'; "
        "likely renamed 'amount' -> 'Amount '; "
        "retyped 'line_id' (declared int, observed boolean)."
    )


def test_non_breaking_describe_and_metadata_are_json_able():
    report = detect_drift(EXPENSE_LINES, strings(*declared(), "vat_code"))
    assert report.describe() == (
        "expense_lines: non-breaking schema drift: added column(s) 'vat_code'."
    )
    metadata = json.loads(json.dumps(report.as_metadata()))
    assert metadata == {
        "source": "expense_lines",
        "has_drift": True,
        "breaking": False,
        "missing": [],
        "missing_required": [],
        "added": ["vat_code"],
        "retyped": [],
        "renamed": [],
        "description": report.describe(),
    }


def test_schema_drift_error_is_a_value_error():
    assert issubclass(SchemaDriftError, ValueError)
