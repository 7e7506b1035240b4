"""Ledger appends: rows built in Python land in one commit, readable by Spark and delta-rs alike."""

from datetime import date, datetime

import pytest
from chispa import assert_df_equality

from infra.lakehouse import LakehouseResource, TableRef
from transforms.frames import local_frame

pytestmark = pytest.mark.spark

SCHEMA = "asset string, business_date date, attempts long, passed boolean, at timestamp"
D = date(2026, 3, 31)


def _rows(asset: str, at: datetime) -> list[dict]:
    return [
        {"asset": asset, "business_date": D, "attempts": 2, "passed": True, "at": at},
        {"asset": asset, "business_date": D, "attempts": None, "passed": None, "at": at},
    ]


def test_rows_appended_to_a_new_ledger_read_back_exactly_in_spark(spark, tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path))
    table = TableRef("ops", "ledger_new")
    at = datetime(2026, 3, 31, 23, 59, 59, 123456)
    commit = lakehouse.write_rows(spark, _rows("a", at), SCHEMA, table)
    assert commit.version == 0 and commit.rows == 2
    expected = local_frame(spark, _rows("a", at), SCHEMA)
    # By the catalog name: the table is registered like every other.
    assert_df_equality(
        spark.table(table.qualified).select(*expected.columns),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert (tmp_path / "ops" / "ledger_new" / "business_date=2026-03-31").is_dir()
    read = lakehouse.read_rows(spark, table, ["asset", "at"], equals={"asset": "a"})
    assert [(r["asset"], r["at"].replace(tzinfo=None)) for r in read] == [("a", at)] * 2


def test_spark_and_delta_rs_commits_interleave_on_one_ledger(spark, tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path))
    table = TableRef("ops", "ledger_mixed")
    at = datetime(2026, 4, 1, 0, 0, 0)
    first = lakehouse.append(local_frame(spark, _rows("spark", at), SCHEMA), table)
    second = lakehouse.write_rows(spark, _rows("rust", at), SCHEMA, table, partitioned=True)
    third = lakehouse.append(local_frame(spark, _rows("spark2", at), SCHEMA), table)
    assert [first.version, second.version, third.version] == [0, 1, 2]
    counts = {
        r["asset"]: r["n"]
        for r in spark.read.format("delta")
        .load(lakehouse.path(table))
        .groupBy("asset")
        .count()
        .withColumnRenamed("count", "n")
        .collect()
    }
    assert counts == {"spark": 2, "rust": 2, "spark2": 2}
    # Time travel to the delta-rs commit sees exactly what it wrote on top of the first.
    as_of = spark.read.format("delta").option("versionAsOf", 1).load(lakehouse.path(table))
    assert sorted(r["asset"] for r in as_of.collect()) == ["rust", "rust", "spark", "spark"]


def test_replacing_dates_of_one_source_leaves_other_sources_and_dates(spark, tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path))
    table = TableRef("ops", "ledger_replace")
    at = datetime(2026, 4, 1)
    other_day = date(2026, 3, 30)
    spark_rows = [
        *_rows("a", at),
        *_rows("b", at),
        {**_rows("a", at)[0], "business_date": other_day},
    ]
    lakehouse.append(local_frame(spark, spark_rows, SCHEMA), table)
    again = [{**_rows("a", at)[0], "attempts": 7}]
    lakehouse.write_rows(
        spark, again, SCHEMA, table, replace_dates=[D], extra_predicate={"asset": "a"}
    )
    left = sorted(
        (r["asset"], r["business_date"], r["attempts"] or 0)
        for r in spark.read.format("delta").load(lakehouse.path(table)).collect()
    )
    assert left == [("a", other_day, 2), ("a", D, 7), ("b", D, 0), ("b", D, 2)]
    # A row outside the dates it replaces is refused, as Spark's replaceWhere refuses it.
    with pytest.raises(Exception, match=r"(?i)invalid data|validation"):
        lakehouse.write_rows(
            spark, [{**again[0], "business_date": other_day}], SCHEMA, table, replace_dates=[D]
        )
