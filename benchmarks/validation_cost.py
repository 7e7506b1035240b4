"""What validation costs: a 20-rule Great Expectations suite vs the same rules as one aggregation.

Generates gold-shaped expense lines in Spark (1 million and 10 million rows by default), writes
them to Delta, then times, on the same data in one run:
  1. GX, result_format SUMMARY (counts only),
  2. GX as the pipeline runs it (COMPLETE with the offending rows' keys),
  3. the same 20 rules as one hand-written Spark aggregation (one pass),
and prints the times and the ratios. Not a test: run on demand.

Usage: .venv/bin/python benchmarks/validation_cost.py [--rows 1000000 10000000]
"""

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import great_expectations.expectations as gxe
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from enrichment.models import STATUSES
from enrichment.taxonomies import SPEND_CATEGORY
from expectations.expense_lines import gold_expense_lines_suite
from expectations.pii import PII_PATTERNS
from expectations.runner import validate
from expectations.suite import ERROR, Rule, Suite
from pipelines.resources.spark import build_spark_session
from transforms.contracts import VALID_CURRENCIES

DAY = date(2026, 3, 31)


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
    return Suite(name="bench", key=base.key, rules=rules)


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


def synthetic(spark, rows: int) -> DataFrame:
    labels = F.array(*[F.lit(x) for x in SPEND_CATEGORY.names])
    currencies = F.array(*[F.lit(x) for x in ("USD", "EUR", "GBP", "CAD")])
    return spark.range(rows).select(
        F.concat(F.lit("ER-"), (F.col("id") / 5).cast("long").cast("string")).alias("report_id"),
        (F.col("id") % 5 + 1).cast("int").alias("line_id"),
        F.concat(F.lit("E"), (F.col("id") % 4000).cast("string")).alias("employee_id"),
        F.date_sub(F.lit(DAY), (F.col("id") % 30).cast("int")).alias("transaction_date"),
        F.lit("Uber").alias("merchant"),
        ((F.col("id") % 50_000) / 3 + 1).cast("decimal(18,2)").alias("amount"),
        currencies[(F.col("id") % 4).cast("int")].alias("currency"),
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


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-validation-"))
    spark = build_spark_session("local[*]", str(workdir / "warehouse"),
                                extra_conf={"spark.sql.shuffle.partitions": "8"})  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    suite = twenty_rule_suite()
    print(f"{'rows':>12} {'GX summary s':>13} {'GX+keys s':>10} {'one agg s':>10} "
          f"{'GX/agg':>7} {'GX+keys/agg':>12}")  # fmt: skip
    for rows in args.rows:
        path = str(workdir / f"gold_{rows}")
        synthetic(spark, rows).write.format("delta").mode("overwrite").save(path)
        df = spark.read.format("delta").load(path)
        hand_written(df)  # warm-up: JIT, file listing
        t_agg, counts = timed(lambda df=df: hand_written(df))
        t_gx, report = timed(lambda df=df: _gx_summary(df, suite))
        t_gx_keys, _ = timed(lambda df=df: validate(df, suite))
        assert report.rows == rows and counts["rows"] == rows
        print(f"{rows:>12,} {t_gx:>13.1f} {t_gx_keys:>10.1f} {t_agg:>10.1f} "
              f"{t_gx / t_agg:>7.1f} {t_gx_keys / t_agg:>12.1f}")  # fmt: skip


def _gx_summary(df: DataFrame, suite: Suite):
    """GX with counts only: how a team would run the same suite without offending keys."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from expectations.runner import ValidationReport

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_spark(name="bench")
        .add_dataframe_asset(name="bench")
        .add_batch_definition_whole_dataframe("bench")
        .get_batch(batch_parameters={"dataframe": df})
    )
    gx_suite = gx.ExpectationSuite(name="bench")
    for rule in suite.rules:
        gx_suite.add_expectation(rule.expectation)
    outcome = batch.validate(gx_suite, result_format="SUMMARY")
    rows = max((r.result or {}).get("element_count", 0) or 0 for r in outcome.results)
    return ValidationReport(suite="bench", rows=rows, results=[])


if __name__ == "__main__":
    main()
