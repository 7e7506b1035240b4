"""Two real public exports landed by declaration only, then through the silver expense path.

Reads ``../shared/data`` (skips cleanly where it is absent). Each real file is read once per module
and cached; every check aggregates in one Spark job.
"""

import csv
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from transforms.contracts import EXPENSE_LINES, HRIS_ROSTER, SourceContract
from transforms.deliveries import delivery_fingerprints, repeated_deliveries
from transforms.ingest import row_hash, with_ingestion_metadata
from transforms.mapping import SourceMapping, read_mapped, unmapped_columns
from transforms.onboarding import BIRMINGHAM_PCARD, CHICAGO_ROSTER
from transforms.sources import classify_source

BIRMINGHAM_FILE = "birmingham_pcard/birmingham_pcard_2014_2016.csv"
CHICAGO_FILE = "payroll/chicago_current_employee_salaries_2018.csv"
# A business date after the data: lines older than a year are outside the claim window.
BUSINESS_DATE = date(2017, 1, 31)


def data_rows(path: Path) -> int:
    """Data rows of a CSV file, counted without Spark (quoted fields may hold commas)."""
    with path.open(newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def landing_shape(contract: SourceContract) -> StructType:
    source_file = StructField("_source_file", StringType())
    return StructType([*contract.landing_schema().fields, source_file])


@pytest.fixture(scope="module")
def cached() -> dict[str, DataFrame]:
    frames: dict[str, DataFrame] = {}
    yield frames
    for df in frames.values():
        df.unpersist()


def landed(spark: SparkSession, cache: dict, mapping: SourceMapping, path: Path) -> DataFrame:
    if mapping.name not in cache:
        cache[mapping.name] = read_mapped(spark, mapping, str(path)).cache()
    return cache[mapping.name]


def test_birmingham_lands_as_expense_lines_with_nothing_dropped(spark, shared_data, cached):
    path = shared_data / BIRMINGHAM_FILE
    df = landed(spark, cached, BIRMINGHAM_PCARD, path)
    assert df.schema == landing_shape(EXPENSE_LINES)
    assert unmapped_columns(BIRMINGHAM_PCARD) == []
    amount = F.col("amount").cast("decimal(18,2)")
    directorate = F.regexp_extract("justification", "^directorate ([^;]+)", 1)
    stats = df.agg(
        F.count("*").alias("rows"),
        F.sum((amount < 0).cast("int")).alias("refunds"),
        F.sum(F.when(amount < 0, amount)).alias("refund_total"),
        F.sum(F.col("transaction_date").rlike(r"^\d{4}-\d{2}-\d{2}$").cast("int")).alias("iso"),
        F.min("transaction_date").alias("first"),
        F.max("transaction_date").alias("last"),
        F.sort_array(F.collect_set(directorate)).alias("directorates"),
        F.sum(F.col("currency").eqNullSafe("GBP").cast("int")).alias("gbp"),
        F.sum(F.col("_corrupt_record").isNotNull().cast("int")).alias("corrupt"),
    ).first()
    reports = df.groupBy("report_id").agg(
        F.count("*").alias("lines"),
        F.count_distinct("line_id").alias("line_ids"),
        F.max(F.col("line_id").cast("int")).alias("last_line"),
    )
    # (report_id, line_id) is unique: each monthly file numbers its lines 1..n.
    assert all(r["lines"] == r["line_ids"] == r["last_line"] for r in reports.collect())
    assert reports.count() == 35  # monthly files
    assert stats["rows"] == data_rows(path) == 131_671
    assert stats["refunds"] == 3_007  # kept, negative
    assert stats["refund_total"] == Decimal("-627536.01")
    assert stats["iso"] == stats["rows"]  # every date parsed to yyyy-MM-dd
    assert (stats["first"], stats["last"]) == ("2013-11-12", "2016-12-31")
    assert stats["directorates"] == [
        "Adults & Communities",
        "CYP&F",
        "CYP&F Schools",
        "Corporate Procurement",
        "Corporate Resources",
        "Development",
        "Local Services",
    ]  # 16 spellings in the file, "CYO&F" and "CYP&F  " among them
    assert stats["gbp"] == stats["rows"]
    assert stats["corrupt"] == 0


def test_birmingham_through_the_silver_expense_path(spark, shared_data, cached):
    df = landed(spark, cached, BIRMINGHAM_PCARD, shared_data / BIRMINGHAM_FILE)
    bronze = df.transform(
        with_ingestion_metadata(EXPENSE_LINES, BUSINESS_DATE, datetime(2017, 2, 1))
    )
    classified = bronze.transform(classify_source(EXPENSE_LINES))
    amount = F.col("amount").cast("decimal(18,2)")
    counts = {
        r["_reason_code"]: (r["rows"], r["refunds"])
        for r in classified.groupBy("_reason_code")
        .agg(F.count("*").alias("rows"), F.sum((amount < 0).cast("int")).alias("refunds"))
        .collect()
    }
    assert sum(rows for rows, _ in counts.values()) == 131_671  # bronze = accepted + quarantined
    assert counts == {
        None: (46_392, 0),  # accepted: Feb 2016 - Dec 2016, in (0, 100000]
        "AMOUNT_OUT_OF_RANGE": (3_008, 3_007),  # every refund, and one 106,289.88 purchase
        "DATE_OUT_OF_RANGE": (82_271, 0),  # before 2016-02-01: outside the claim window
    }


def test_birmingham_monthly_file_published_twice_is_found(spark, shared_data, cached):
    """Two of the council's monthly files carry the same transactions under two names."""
    df = landed(spark, cached, BIRMINGHAM_PCARD, shared_data / BIRMINGHAM_FILE)
    # A monthly file is one report here; its content is every column but the ones named after
    # the file (report_id) or numbered within it (line_id).
    content = [c for c in EXPENSE_LINES.column_names if c not in ("report_id", "line_id")]
    prints = df.withColumn("business_date", F.lit(BUSINESS_DATE)).transform(
        delivery_fingerprints("report_id", row_hash(content))
    )
    repeats = repeated_deliveries(prints).collect()
    assert prints.count() == 35
    # Both are read on one business date here, so the name decides which one is the original.
    assert [(r["original"], r["delivery"]) for r in repeats] == [
        ("purchasecardtransactionsjune2014", "purchasecardtransactionsmay2014")
    ]
    rows = {r["delivery"]: r["rows"] for r in prints.collect()}
    assert rows[repeats[0]["delivery"]] == rows[repeats[0]["original"]] == 4_573


def test_chicago_lands_as_hris_roster_with_unique_surrogate_keys(spark, shared_data, cached):
    path = shared_data / CHICAGO_FILE
    df = landed(spark, cached, CHICAGO_ROSTER, path)
    assert df.schema == landing_shape(HRIS_ROSTER)
    salary = F.col("annual_salary").cast("decimal(18,2)")
    filled = F.coalesce(*[F.col(c) for c in unmapped_columns(CHICAGO_ROSTER)])
    stats = df.agg(
        F.count("*").alias("rows"),
        F.count_distinct("employee_id").alias("keys"),
        F.count_distinct("name").alias("names"),
        F.sum(salary).alias("salaries"),
        F.sum((salary.isNull()).cast("int")).alias("unparsed"),
        F.sum(F.col("employee_id").rlike("^[0-9a-f]{16}-[0-9]+$").cast("int")).alias("keyed"),
        F.collect_set("status").alias("status"),
        F.collect_set("currency").alias("currency"),
        F.collect_set("legal_entity").alias("legal_entity"),
        F.sum(filled.isNotNull().cast("int")).alias("filled_unmapped"),
    ).first()
    assert stats["rows"] == data_rows(path) == 32_812
    assert stats["keys"] == stats["rows"]
    assert stats["names"] < stats["rows"]  # names repeat: they could not be the key
    assert stats["keyed"] == stats["rows"]
    assert stats["salaries"] == Decimal("2679227378.28")  # 24,951 salaried + 7,861 hourly
    assert stats["unparsed"] == 0
    assert (stats["status"], stats["currency"], stats["legal_entity"]) == (
        ["active"],
        ["USD"],
        ["CHI01"],
    )
    assert stats["filled_unmapped"] == 0
    sample = {
        r["name"]: (r["title"], r["department"], r["annual_salary"])
        for r in df.where(
            F.col("name").isin("AARON,  JEFFERY M", "ABARCA,  EMMANUEL ", "ABASCAL,  REECE E")
        ).collect()
    }
    assert sample == {
        "AARON,  JEFFERY M": ("SERGEANT", "POLICE", "101442.00"),
        "ABARCA,  EMMANUEL ": ("CONCRETE LABORER", "TRANSPORTN", "75254.40"),  # 36.18 x 40 x 52
        "ABASCAL,  REECE E": ("TRAFFIC CONTROL AIDE-HOURLY", "OEMC", "20654.40"),  # 19.86x20x52
    }
