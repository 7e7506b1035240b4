"""What validation costs: a 20-rule Great Expectations suite vs the same rules as one aggregation.

Generates gold-shaped expense lines in Spark (1 million and 10 million rows by default), writes
them to Delta, then, on the same data in one run, times and counts the Spark jobs of:
  1. one aggregation: the 20 rules as failing-row counts, hand-written (the floor),
  2. GX counts only: one validation, ``SUMMARY`` without partial lists,
  3. GX in one pass with offending keys (``COMPLETE``): how the pipeline validated until the
     two-pass runner; it collects every offending row to the driver,
  4. the pipeline's runner (``expectations.runner.validate``) on a partition that passes:
     counts, then nothing more,
  5. the runner on a partition where 1% of rows break one rule: counts, then the offending keys
     of that rule alone.
and prints the times, the Spark jobs and the ratios to the aggregation. Not a test: run on demand.

Usage: .venv/bin/python benchmarks/validation_cost.py [--rows 1000000 10000000]
       [--driver-memory 6g] [--skip-complete]
"""

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from enrichment.models import STATUSES
from enrichment.taxonomies import SPEND_CATEGORY
from expectations.expense_lines import gold_expense_lines_suite
from expectations.pii import PII_PATTERNS
from expectations.runner import COUNTS_ONLY, validate
from expectations.suite import ERROR, Rule, Suite
from infra.spark import build_spark_session
from transforms.contracts import VALID_CURRENCIES

DAY = date(2026, 3, 31)
BROKEN_RULE = "currency_is_iso"


def twenty_rule_suite() -> Suite:
    """The gold suite's rules (without drift, which needs history) plus not-null checks: 20."""
    base = gold_expense_lines_suite(DAY)
    extra = [
        Rule(f"{c}_not_null", ERROR, f"{c} is present", gxe.ExpectColumnValuesToNotBeNull(column=c))
        for c in ("merchant", "transaction_date", "currency", "input_hash", "prompt_version",
                  "business_date")
    ]  # fmt: skip
    rules = (*base.rules, *extra)[:20]
    assert len(rules) == 20, len(rules)
    return Suite(name="bench", key=base.key, rules=rules, prepare=base.prepare)


def hand_written(df: DataFrame) -> dict:
    """The same 20 rules as failing-row counts in one aggregation."""
    currencies = sorted(VALID_CURRENCIES)
    labels = SPEND_CATEGORY.names
    summary_pii = "|".join(f"({p})" for p in PII_PATTERNS.values())
    fail = {
        "report_id_not_null": F.col("report_id").isNull(),
        "line_id_not_null": F.col("line_id").isNull(),
        "employee_id_not_null": F.col("employee_id").isNull(),
        "amount_in_range": ~F.col("amount").between(0.01, 100_000),
        "currency_is_iso": ~F.col("currency").isin(*currencies),
        "transaction_date_in_claim_window": ~F.col("transaction_date").between(
            F.date_sub(F.lit(DAY), 365), F.lit(DAY)
        ),
        "spend_category_in_taxonomy": ~F.col("spend_category").isin(*labels),
        "enrichment_status_known": ~F.col("enrichment_status").isin(*STATUSES),
        "confidence_is_probability": ~F.col("confidence").between(0, 1),
        "provenance_model_recorded": F.col("model").isNull(),
        "summary_length_bounded": ~F.length("justification_summary").between(1, 300),
        "summary_has_no_personal_data": F.col("justification_summary").rlike(summary_pii),
        "enriched_share": F.col("enrichment_status") != "ok",
        "refusal_and_truncation_rate": F.col("failure_kind").isin("refusal", "truncated"),
        "merchant_not_null": F.col("merchant").isNull(),
        "transaction_date_not_null": F.col("transaction_date").isNull(),
        "currency_not_null": F.col("currency").isNull(),
        "input_hash_not_null": F.col("input_hash").isNull(),
        "prompt_version_not_null": F.col("prompt_version").isNull(),
    }
    aggregates = [F.sum(F.when(cond, 1).otherwise(0)).alias(name) for name, cond in fail.items()]
    aggregates += [
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("report_id", "line_id").alias("distinct_keys"),
    ]
    row = df.agg(*aggregates).first().asDict()
    row["line_key_unique"] = row["rows"] - row.pop("distinct_keys")
    return row


def synthetic(spark: SparkSession, rows: int, broken_share: float = 0.0) -> DataFrame:
    """Gold-shaped expense lines; ``broken_share`` of them carry a currency outside ISO 4217."""
    labels = F.array(*[F.lit(x) for x in SPEND_CATEGORY.names])
    currencies = F.array(*[F.lit(x) for x in ("USD", "EUR", "GBP", "CAD")])
    broken = (F.col("id") % 10_000) < int(broken_share * 10_000)
    return spark.range(rows).select(
        F.concat(F.lit("ER-"), (F.col("id") / 5).cast("long").cast("string")).alias("report_id"),
        (F.col("id") % 5 + 1).cast("int").alias("line_id"),
        F.concat(F.lit("E"), (F.col("id") % 4000).cast("string")).alias("employee_id"),
        F.date_sub(F.lit(DAY), (F.col("id") % 30).cast("int")).alias("transaction_date"),
        F.lit("Uber").alias("merchant"),
        ((F.col("id") % 50_000) / 3 + 1).cast("decimal(18,2)").alias("amount"),
        F.when(broken, F.lit("US$"))
        .otherwise(currencies[(F.col("id") % 4).cast("int")])
        .alias("currency"),
        labels[(F.col("id") % 9).cast("int")].alias("spend_category"),
        ((F.col("id") % 100) / 100.0).alias("confidence"),
        F.lit("Taxi from the airport to the client office.").alias("justification_summary"),
        F.lit("ok").alias("enrichment_status"),
        F.lit("none").alias("failure_kind"),
        F.lit("embedded/bench").alias("model"),
        F.lit("expense-v1").alias("prompt_version"),
        F.sha2(F.col("id").cast("string"), 256).alias("input_hash"),
        F.lit(DAY).alias("business_date"),
    )


def gx_one_pass(df: DataFrame, suite: Suite, result_format: dict) -> dict:
    """Every rule in one GX validation with ``result_format``; failed rules and rows checked."""
    if suite.prepare is not None:
        df = suite.prepare(df)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_spark(name="bench", persist=True)
        .add_dataframe_asset(name="bench")
        .add_batch_definition_whole_dataframe("bench")
        .get_batch(batch_parameters={"dataframe": df})
    )
    gx_suite = gx.ExpectationSuite(name="bench")
    for rule in suite.rules:
        gx_suite.add_expectation(rule.expectation.copy(update={"id": None}))
    outcome = batch.validate(gx_suite, result_format=result_format)
    rows = max((r.result or {}).get("element_count", 0) or 0 for r in outcome.results)
    return {"rows": rows, "failed": sum(not r.success for r in outcome.results)}


class Measured:
    """Runs a callable in its own Spark job group; keeps the wall time and the jobs it ran."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._n = 0

    def __call__(self, fn: Callable[[], object]) -> tuple[float, int, object]:
        self._n += 1
        group = f"bench-{self._n}"
        context = self.spark.sparkContext
        context.setJobGroup(group, group)
        # Every measurement starts from the Delta files (GX's own persist is never released).
        self.spark.catalog.clearCache()
        started = time.perf_counter()
        try:
            result = fn()
        finally:
            elapsed = time.perf_counter() - started
            context.setLocalProperty("spark.jobGroup.id", None)
        return elapsed, len(context.statusTracker().getJobIdsForGroup(group)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--driver-memory",
        default="6g",
        help="Spark driver heap; in local mode it is the executors' heap too",
    )
    parser.add_argument(
        "--skip-complete",
        action="store_true",
        help="leave out GX COMPLETE (3), which holds every offending key",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-validation-"))
    spark = build_spark_session("local[*]", str(workdir / "warehouse"),
                                extra_conf={"spark.sql.shuffle.partitions": "8",
                                            "spark.driver.memory": args.driver_memory,
                                            "spark.ui.enabled": "false"})  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    measure = Measured(spark)
    complete = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": list(twenty_rule_suite().key),
        "return_unexpected_index_query": False,
    }
    cores = spark.sparkContext.defaultParallelism
    print(
        f"Spark {spark.version}, GX {gx.__version__}, {cores} cores, driver heap "
        f"{args.driver_memory}; a 20-rule suite; times in seconds."
    )
    # Warm-up: GX's imports and first validation, and the JIT, on a small frame.
    validate(synthetic(spark, 1000), twenty_rule_suite())
    for rows in args.rows:
        paths = {}
        for name, share in (("good", 0.0), ("broken", 0.01)):
            paths[name] = str(workdir / f"gold_{rows}_{name}")
            synthetic(spark, rows, share).write.format("delta").mode("overwrite").save(paths[name])
        good = spark.read.format("delta").load(paths["good"])
        broken = spark.read.format("delta").load(paths["broken"])
        hand_written(good)  # warm-up: JIT, file listing
        table: list[tuple[str, float, int, str]] = []
        t, jobs, counts = measure(lambda df=good: hand_written(df))
        assert counts["rows"] == rows and counts[BROKEN_RULE] == 0
        table.append(("1. one aggregation (floor)", t, jobs, "counts"))
        t, jobs, out = measure(lambda df=good: gx_one_pass(df, twenty_rule_suite(), COUNTS_ONLY))
        assert out["rows"] == rows and out["failed"] == 0
        table.append(("2. GX counts only", t, jobs, "counts"))
        if not args.skip_complete:
            t, jobs, out = measure(lambda df=good: gx_one_pass(df, twenty_rule_suite(), complete))
            table.append(("3. GX one pass + keys (COMPLETE)", t, jobs, "counts, every key"))
        t, jobs, report = measure(lambda df=good: validate(df, twenty_rule_suite()))
        assert report.passed and report.passes == 1 and report.rows == rows
        table.append(("4. runner, partition passes", t, jobs, "counts"))
        t, jobs, report = measure(lambda df=broken: validate(df, twenty_rule_suite()))
        [failed] = [r for r in report.results if not r.success]
        assert failed.name == BROKEN_RULE and failed.unexpected_count == rows // 100
        assert report.passes == 2 and len(failed.offending_keys) > 0
        table.append(("5. runner, 1% rows break a rule", t, jobs,
                      f"counts, {len(failed.offending_keys):,} keys"))  # fmt: skip
        floor = table[0][1]
        print(f"\n{rows:,} rows")
        print(f"  {'':<36}{'s':>8}{'jobs':>6}{'x agg':>7}  returns")
        for name, seconds, jobs, returns in table:
            print(f"  {name:<36}{seconds:>8.1f}{jobs:>6}{seconds / floor:>7.1f}  {returns}")


if __name__ == "__main__":
    main()
