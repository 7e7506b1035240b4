"""Driver-held rows as a local relation: the same rows as createDataFrame, planned by their size."""

from datetime import date, datetime
from decimal import Decimal

from chispa import assert_df_equality

from transforms.frames import local_frame

SCHEMA = (
    "id int, day date, at timestamp, amount decimal(18,2), tags array<string>, "
    "payee struct<name:string,iban:string>, note string"
)
ROWS = [
    (
        1,
        date(2026, 3, 31),
        datetime(2026, 3, 31, 9, 30),
        Decimal("12.50"),
        ["a", "b"],
        ("Acme", None),
        None,
    ),
    (2, None, None, Decimal("-0.01"), [], None, "x'y\\z"),
]


def _jobs(spark, build) -> int:
    """Spark jobs started while ``build()`` runs."""
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("local-frame-test", "local_frame jobs")
    try:
        before = set(tracker.getJobIdsForGroup("local-frame-test"))
        build()
        return len(set(tracker.getJobIdsForGroup("local-frame-test")) - before)
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)


def test_the_same_rows_and_schema_as_create_data_frame(spark):
    assert_df_equality(local_frame(spark, ROWS, SCHEMA), spark.createDataFrame(ROWS, SCHEMA))
    by_name = [{"k": "a", "v": 1}]
    assert local_frame(spark, by_name).collect() == spark.createDataFrame(by_name).collect()
    assert local_frame(spark, [], SCHEMA).schema == spark.createDataFrame([], SCHEMA).schema
    assert local_frame(spark, [], SCHEMA).count() == 0


def test_planned_as_a_local_relation_of_its_true_size_and_broadcast(spark):
    frame = local_frame(spark, ROWS, SCHEMA)
    assert frame._jdf.queryExecution().analyzed().nodeName() == "LocalRelation"
    assert frame._jdf.queryExecution().optimizedPlan().stats().sizeInBytes() < 10_000
    other = [(1, "one"), (2, "two")]

    def join_plan(make) -> str:
        joined = make(ROWS, SCHEMA).join(make(other, "id int, name string"), "id")
        return joined._jdf.queryExecution().executedPlan().toString()

    assert "BroadcastHashJoin" in join_plan(lambda rows, schema: local_frame(spark, rows, schema))
    # What it replaces: RDDs of unknown size, joined by sorting and shuffling both sides.
    assert "SortMergeJoin" in join_plan(spark.createDataFrame)


def test_one_job_to_make_it_none_when_empty_and_none_to_collect_it(spark):
    assert _jobs(spark, lambda: local_frame(spark, ROWS, SCHEMA)) == 1
    assert _jobs(spark, lambda: local_frame(spark, [], SCHEMA)) == 0
    frame = local_frame(spark, ROWS, SCHEMA)
    assert _jobs(spark, frame.collect) == 0
