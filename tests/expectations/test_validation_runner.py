"""The suite runner: every rule counted in one GX pass, offending rows sought only on failure."""

import dataclasses
import uuid
from datetime import timedelta

from expectations.expense_lines import gold_expense_lines_suite
from expectations.runner import MAX_OFFENDING_KEYS, validate
from tests.gold_helpers import DAY, SCHEMA, line
from transforms.frames import local_frame


def _jobs_of(spark, fn):
    """Run ``fn`` in a Spark job group of its own; return its result and the jobs it ran."""
    context = spark.sparkContext
    # Unique per call: an ``id`` is reused once its lambda is gone, and a reused group would count
    # the earlier call's jobs too.
    group = f"runner-test-{uuid.uuid4().hex}"
    context.setJobGroup(group, group)
    try:
        result = fn()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    return result, len(context.statusTracker().getJobIdsForGroup(group))


def test_a_passing_partition_is_validated_in_one_pass_with_counts_for_every_rule(spark):
    df = local_frame(spark, [line(i) for i in range(6)], SCHEMA)
    suite = gold_expense_lines_suite(DAY)
    report = validate(df, suite)
    assert report.passed and report.passes == 1 and report.rows == 6
    assert {r.name for r in report.results} == {r.name for r in suite.rules}
    row_level = [r for r in report.results if r.unexpected_count is not None]
    assert row_level and all(r.unexpected_count == 0 and r.element_count == 6 for r in row_level)
    assert all(not r.offending_keys and not r.sample for r in report.results)


def test_only_failed_rules_are_looked_up_again_and_their_rows_are_named(spark):
    rows = [line(i) for i in range(9)]
    rows[2] = line(2, currency="US$")
    rows[7] = line(7, currency="XX", transaction_date=DAY + timedelta(days=2))
    df = local_frame(spark, rows, SCHEMA)
    report = validate(df, gold_expense_lines_suite(DAY))
    failed = {r.name: r for r in report.results if not r.success}
    assert set(failed) == {"currency_is_iso", "transaction_date_in_claim_window"}
    assert report.passes == 2 and not report.passed
    currency = failed["currency_is_iso"]
    assert currency.unexpected_count == 2 and sorted(currency.sample) == ["US$", "XX"]
    assert sorted((k["report_id"], k["line_id"]) for k in currency.offending_keys) == [
        ("ER-0", 3),
        ("ER-2", 2),
    ]
    assert failed["transaction_date_in_claim_window"].offending_keys == [
        {"report_id": "ER-2", "line_id": 2}
    ]
    # Rules that passed carry no lookup.
    assert all(not r.offending_keys for r in report.results if r.success)


def _passing_and_failing(spark):
    """Six cached lines that pass the gold suite, and the same with one bad currency."""
    good = local_frame(spark, [line(i) for i in range(6)], SCHEMA).cache()
    bad = local_frame(spark, [line(0, currency="US$")] + [line(i) for i in range(1, 6)], SCHEMA)
    bad = bad.cache()
    good.count(), bad.count()
    return good, bad


def test_the_lookup_costs_spark_jobs_only_when_a_rule_fails(spark, monkeypatch):
    # GX's Spark engine (a frame over ``GX_PANDAS_MAX_ROWS``).
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "0")
    good, bad = _passing_and_failing(spark)
    suite = gold_expense_lines_suite(DAY)
    validate(good, suite)  # warm-up
    passed, passing_jobs = _jobs_of(spark, lambda: validate(good, suite))
    failed, failing_jobs = _jobs_of(spark, lambda: validate(bad, suite))
    assert passed.passes == 1 and failed.passes == 2
    assert passed.engine == failed.engine == "spark"
    assert failing_jobs > passing_jobs
    # GX bundles count metrics per column: well under one job per rule for a passing partition.
    assert passing_jobs < len(suite.rules)


def test_offending_keys_are_bounded_however_many_rows_fail(spark):
    rows = spark.range(MAX_OFFENDING_KEYS + 500).selectExpr(
        "concat('ER-', cast(id as string)) as report_id", "1 as line_id"
    )
    base = local_frame(spark, [line(0, currency="US$")], SCHEMA).drop("report_id", "line_id")
    df = rows.crossJoin(base).select(*local_frame(spark, [], SCHEMA).columns)
    report = validate(df, gold_expense_lines_suite(DAY))
    [currency] = [r for r in report.results if r.name == "currency_is_iso"]
    assert currency.unexpected_count == MAX_OFFENDING_KEYS + 500
    assert len(currency.offending_keys) == MAX_OFFENDING_KEYS


def test_the_same_suite_can_be_validated_twice(spark):
    df = local_frame(spark, [line(i) for i in range(3)], SCHEMA)
    suite = gold_expense_lines_suite(DAY)
    assert validate(df, suite).passed
    assert validate(df, suite).passed


def test_a_small_frame_costs_one_spark_job_passing_or_failing(spark, monkeypatch):
    # GX's pandas engine on the frame collected once; the Spark engine costs it several jobs.
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "1000")
    good, bad = _passing_and_failing(spark)
    suite = gold_expense_lines_suite(DAY)
    passed, passing_jobs = _jobs_of(spark, lambda: validate(good, suite))
    failed, failing_jobs = _jobs_of(spark, lambda: validate(bad, suite))
    assert (passed.engine, passed.passes, failed.engine, failed.passes) == (
        "pandas",
        1,
        "pandas",
        2,
    )
    assert passing_jobs == failing_jobs == 1
    monkeypatch.setenv("GX_PANDAS_MAX_ROWS", "0")
    on_spark, spark_jobs = _jobs_of(spark, lambda: validate(good, suite))
    assert on_spark.engine == "spark" and spark_jobs > 1


def test_a_suites_prepare_runs_once_on_either_engine(spark, monkeypatch):
    df = local_frame(spark, [line(i) for i in range(3)], SCHEMA)
    suite = gold_expense_lines_suite(DAY)
    calls = []

    def prepare(frame, original=suite.prepare):
        calls.append(frame)
        return original(frame)

    suite = dataclasses.replace(suite, prepare=prepare)
    # Collected for pandas; collected, over the bound, and validated on Spark; Spark from the start.
    for bound, engine in (("1000", "pandas"), ("1", "spark"), ("0", "spark")):
        monkeypatch.setenv("GX_PANDAS_MAX_ROWS", bound)
        calls.clear()
        report = validate(df, suite)
        assert (report.engine, report.passed, len(calls)) == (engine, True, 1)
