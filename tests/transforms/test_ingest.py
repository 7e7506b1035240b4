"""Bronze metadata: row hashes tell null from empty, and metadata columns are added."""

from datetime import date, datetime

from pyspark.sql import functions as F

from transforms.contracts import EXPENSE_LINES
from transforms.frames import local_frame
from transforms.ingest import row_hash, with_ingestion_metadata


def test_row_hash_distinguishes_null_from_empty_and_is_stable(spark):
    df = local_frame(spark, [("a", None), ("a", ""), ("a", None)], "x string, y string")
    hashes = [r[0] for r in df.select(row_hash(["x", "y"])).collect()]
    assert hashes[0] != hashes[1]
    assert hashes[0] == hashes[2]
    assert all(len(h) == 64 for h in hashes)


def test_ingestion_metadata_columns(spark):
    columns = [*EXPENSE_LINES.column_names, "_corrupt_record", "_source_file"]
    df = local_frame(
        spark,
        [tuple(f"v{i}" for i in range(len(columns)))],
        ", ".join(f"{c} string" for c in columns),
    )
    out = df.transform(
        with_ingestion_metadata(EXPENSE_LINES, date(2026, 1, 2), datetime(2026, 1, 3, 4, 5))
    )
    assert out.columns == [
        *EXPENSE_LINES.column_names,
        "_corrupt_record",
        "_extra_columns",
        "_source_file",
        "_ingested_at",
        "_row_hash",
        "business_date",
    ]
    row = out.select("business_date", F.col("_ingested_at").cast("string")).first()
    assert row[0] == date(2026, 1, 2)
    assert row[1] == "2026-01-03 04:05:00"
