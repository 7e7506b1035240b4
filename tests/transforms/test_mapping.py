"""Declared source mappings: alternatives, expressions, surrogate keys and drift, on tiny frames."""

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from transforms.contracts import EXPENSE_LINES, HRIS_ROSTER, Column, SourceContract
from transforms.drift import SchemaDriftError
from transforms.frames import local_frame
from transforms.mapping import SourceMapping, apply_mapping, read_mapped, unmapped_columns
from transforms.onboarding import BIRMINGHAM_PCARD, CHICAGO_ROSTER

PEOPLE = SourceContract(
    name="people",
    columns=(
        Column("person_id", required=True),
        Column("name", required=True),
        Column("paid", "decimal(18,2)"),
        Column("joined", "date"),
        Column("country"),
        Column("note"),
    ),
    key=("person_id",),
)
LANDING = [*PEOPLE.column_names, "_corrupt_record", "_source_file"]


def frame(spark: SparkSession, columns: list[str], rows: list[tuple]):
    return local_frame(spark, rows, ", ".join(f"`{c}` string" for c in columns))


def landed(spark: SparkSession, rows: list[tuple]):
    return frame(spark, LANDING, rows)


def mapping(**changes) -> SourceMapping:
    declared = {
        "name": "people_export",
        "contract": PEOPLE,
        "file_format": "csv",
        "columns": {"person_id": "id", "name": ("Full Name", "full_name")},
        "expressions": {"country": "'GB'"},
    }
    return SourceMapping(**{**declared, **changes})


def test_columns_land_in_contract_order_as_strings_with_unmapped_null(spark):
    raw = frame(spark, ["full_name", "id", "_source_file"], [("Ada", "7", "file:/x.csv")])
    out = apply_mapping(raw, mapping())
    assert out.schema == StructType(
        [*PEOPLE.landing_schema().fields, StructField("_source_file", StringType())]
    )
    expected = landed(spark, [("7", "Ada", None, None, "GB", None, None, "file:/x.csv")])
    assert_df_equality(out, expected)
    assert unmapped_columns(mapping()) == ["paid", "joined", "note"]


def test_first_present_alternative_wins(spark):
    raw = frame(spark, ["id", "Full Name", "full_name"], [("1", "renamed", "old")])
    out = apply_mapping(raw, mapping())
    assert out.select("name").first()[0] == "renamed"
    raw = frame(spark, ["id", "full_name"], [("1", "old")])
    assert apply_mapping(raw, mapping()).select("name").first()[0] == "old"


def test_missing_source_column_raises_drift_naming_it_and_its_alternatives(spark):
    raw = frame(spark, ["id", "FullName"], [("1", "Ada")])
    with pytest.raises(SchemaDriftError) as error:
        apply_mapping(raw, mapping())
    message = str(error.value)
    assert message.startswith("people_export: source column(s) not found in the file:")
    assert "name <- 'Full Name' | 'full_name'" in message
    assert "File columns: 'id', 'FullName'." in message


def test_expression_over_a_missing_column_raises_drift_naming_the_target(spark):
    raw = frame(spark, ["id", "full_name"], [("1", "Ada")])
    broken = mapping(expressions={"paid": "try_cast(gross AS decimal(18,2))"})
    with pytest.raises(SchemaDriftError, match="the expression for paid does not resolve"):
        apply_mapping(raw, broken)


def test_expressions_parse_money_several_date_formats_and_constants(spark):
    raw = frame(
        spark,
        ["id", "full_name", "pay", "start"],
        [
            ("1", "A", "$101442.00", "2016-12-30 00:00:00"),
            ("2", "B", "$1,234.5", "30/12/2016"),
            ("3", "C", "n/a", "2016-12-30"),
            ("4", "D", None, "sometime"),
        ],
    )
    parsed = mapping(
        expressions={
            "country": "'GB'",
            "paid": "try_cast(regexp_replace(trim(pay), '[$,]', '') AS decimal(18,2))",
            "joined": (
                "coalesce(date_format(coalesce("
                "try_to_date(start, 'yyyy-MM-dd HH:mm:ss'), try_to_date(start, 'yyyy-MM-dd'),"
                " try_to_date(start, 'dd/MM/yyyy')), 'yyyy-MM-dd'), start)"
            ),
        }
    )
    out = apply_mapping(raw, parsed).select("person_id", "paid", "joined", "country")
    expected = frame(
        spark,
        ["person_id", "paid", "joined", "country"],
        [
            ("1", "101442.00", "2016-12-30", "GB"),
            ("2", "1234.50", "2016-12-30", "GB"),
            ("3", None, "2016-12-30", "GB"),
            ("4", None, "sometime", "GB"),
        ],
    )
    assert_df_equality(out, expected, ignore_row_order=True)


def keyed(spark: SparkSession, rows: list[tuple], partitions: int):
    raw = frame(spark, ["full_name", "dept", "pay"], rows).repartition(partitions)
    surrogate = mapping(
        columns={"name": "full_name", "note": "dept"}, surrogate_key=("full_name", "dept", "pay")
    )
    return {
        (r["name"], r["note"], r["person_id"])
        for r in apply_mapping(raw, surrogate).select("name", "note", "person_id").collect()
    }


def test_surrogate_key_is_unique_with_repeated_identical_rows_and_stable(spark):
    rows = [
        ("SMITH, J", "POLICE", "$1.00"),
        ("SMITH, J", "POLICE", "$1.00"),
        ("SMITH, J", "POLICE", "$1.00"),
        ("SMITH, J", "FIRE", "$1.00"),
        ("JONES, K", None, "$2.00"),
        ("JONES, K", "", "$2.00"),
    ]
    first = keyed(spark, rows, 1)
    keys = [k for _, _, k in first]
    assert len(keys) == len(set(keys)) == len(rows)
    smith_police = sorted(k for n, d, k in first if (n, d) == ("SMITH, J", "POLICE"))
    prefixes = {k.rsplit("-", 1)[0] for k in smith_police}
    assert len(prefixes) == 1 and len(next(iter(prefixes))) == 16
    assert [k.rsplit("-", 1)[1] for k in smith_police] == ["1", "2", "3"]
    # Null and empty hash differently; another order and partitioning gives the same keys.
    assert len({k for n, _, k in first if n == "JONES, K"}) == 2
    assert keyed(spark, list(reversed(rows)), 3) == first
    assert keyed(spark, rows[:1], 1) == {("SMITH, J", "POLICE", f"{prefixes.pop()}-1")}


def test_missing_surrogate_source_column_raises_drift(spark):
    raw = frame(spark, ["id", "full_name"], [("1", "Ada")])
    surrogate = mapping(columns={"name": "full_name"}, surrogate_key=("full_name", "dept"))
    with pytest.raises(SchemaDriftError, match=r"person_id \(surrogate key\) <- 'dept'"):
        apply_mapping(raw, surrogate)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"file_format": "xlsx"}, "file_format must be one of"),
        ({"columns": {"person_id": "id", "salary": "pay"}}, r"declares no column \['salary'\]"),
        ({"expressions": {"person_id": "'x'"}}, r"mapped more than once: \['person_id'\]"),
        ({"surrogate_key": ("id",)}, r"mapped more than once: \['person_id'\]"),
        ({"contract": EXPENSE_LINES, "columns": {}, "surrogate_key": ("a",)}, "single-column"),
    ],
)
def test_inconsistent_mappings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        mapping(**changes)


def test_read_mapped_reads_a_csv_file_all_strings(spark, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('id,Full Name,extra\n007,"Lovelace, Ada",x\n008,,y\n')
    out = read_mapped(spark, mapping(), str(path))
    rows = [r.asDict() for r in out.orderBy("person_id").collect()]
    assert [(r["person_id"], r["name"], r["country"]) for r in rows] == [
        ("007", "Lovelace, Ada", "GB"),
        ("008", None, "GB"),
    ]
    assert all(r["_source_file"].endswith("/export.csv") for r in rows)


# --- The onboarding declarations, on inline rows shaped like the real exports ----------------

BIRMINGHAM_COLUMNS = [
    "trans_date",
    "trans_vat_desc",
    "original_gross_amt",
    "merchant_name",
    "card_number",
    "trans_cac_code_1",
    "trans_cac_desc_1",
    "trans_cac_code_2",
    "trans_cac_desc_2",
    "trans_cac_code_3",
    "directorate",
    "source_file",
]


def pcard(date: str, amount: str, directorate: str, vat: str | None, month: str) -> tuple:
    return (date, vat, amount, "ryman", "****8407", "L420", "Stationery", "RV016", "Edgewood",
            "A00", directorate, month)  # fmt: skip


def test_birmingham_declaration_on_drifting_monthly_rows(spark):
    raw = frame(
        spark,
        BIRMINGHAM_COLUMNS,
        [
            pcard("2016-12-30 00:00:00", "66.15", "CYP&F ", "VR", "jan-2017.xls"),
            pcard("2016-12-15", "-9.25", "CYO&F", None, "jan-2017.xls"),
            pcard("03/11/2014", "12", "Adults & Comms", "VZ", "nov2014.xls"),
            pcard("not a date", "5.00", "  ", "VZ", "nov2014.xls"),
        ],
    )
    out = apply_mapping(raw, BIRMINGHAM_PCARD).drop("_corrupt_record", "_source_file")
    expected = frame(
        spark,
        EXPENSE_LINES.column_names,
        [
            ("jan-2017", "1", "****8407", "2016-12-15", "ryman", "-9.25", "GBP", "Stationery",
             "directorate CYP&F"),
            ("jan-2017", "2", "****8407", "2016-12-30", "ryman", "66.15", "GBP", "Stationery",
             "directorate CYP&F; VAT code VR"),
            ("nov2014", "1", "****8407", "2014-11-03", "ryman", "12", "GBP", "Stationery",
             "directorate Adults & Communities; VAT code VZ"),
            ("nov2014", "2", "****8407", "not a date", "ryman", "5.00", "GBP", "Stationery",
             "VAT code VZ"),
        ],
    )  # fmt: skip
    assert_df_equality(out, expected, ignore_row_order=True)
    assert unmapped_columns(BIRMINGHAM_PCARD) == []


def test_chicago_declaration_annualises_hourly_pay(spark):
    columns = [
        "Name",
        "Job Titles",
        "Department",
        "Full or Part-Time",
        "Salary or Hourly",
        "Typical Hours",
        "Annual Salary",
        "Hourly Rate",
    ]
    raw = frame(
        spark,
        columns,
        [
            ("AARON,  JEFFERY M", "SERGEANT", "POLICE", "F", "Salary", None, "$101442.00", None),
            ("ABASCAL,  REECE E", "AIDE", "OEMC", "P", "Hourly", "20", None, "$19.86"),
            ("X,  Y", "CLERK", "OEMC", "F", "Salary", None, "TBD", None),
        ],
    )
    out = apply_mapping(raw, CHICAGO_ROSTER)
    got = {
        r["name"]: (r["annual_salary"], r["currency"], r["status"], r["legal_entity"])
        for r in out.collect()
    }
    assert got == {
        "AARON,  JEFFERY M": ("101442.00", "USD", "active", "CHI01"),
        "ABASCAL,  REECE E": ("20654.40", "USD", "active", "CHI01"),  # 19.86 x 20 x 52
        "X,  Y": ("TBD", "USD", "active", "CHI01"),  # passed through for silver to reject
    }
    assert out.columns == [*HRIS_ROSTER.column_names, "_corrupt_record", "_source_file"]
    assert unmapped_columns(CHICAGO_ROSTER) == [
        "email",
        "cost_centre",
        "location",
        "hire_date",
        "termination_date",
        "manager_id",
    ]
