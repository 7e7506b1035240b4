"""``python -m pipelines.cli run``: the main job on embedded defaults, end to end.

Writes a sample landing zone (if the date has none), materializes the latest business date
through Dagster, and prints what it published and how to query it.
"""

import argparse
import os
import sys
from datetime import date, timedelta
from pathlib import Path

from dagster import DagsterInstance, materialize

from pipelines import sample_data
from pipelines.settings import lakehouse_root


def _summary(day: date, provider: str) -> str:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from pipelines.resources.lakehouse import LakehouseResource, TableRef

    spark = SparkSession.getActiveSession()
    lakehouse = LakehouseResource()
    lines = [f"Published business date {day} to gold. Enrichment: {provider}.", ""]
    for table in (TableRef("gold", "expense_lines"),):
        df = lakehouse.read_partition(spark, table, day)
        lines.append(f"  {table.qualified:<28} {df.count():>8} rows  at {lakehouse.path(table)}")
        by = df.groupBy("spend_category").count().orderBy(F.col("count").desc()).collect()
        lines.append("    by spend_category: " + ", ".join(f"{r[0]}={r[1]}" for r in by))
        status = df.groupBy("enrichment_status", "source").count().collect()
        lines.append("    enrichment: " + ", ".join(f"{r[0]}/{r[1]}={r[2]}" for r in status))
    quarantine = lakehouse.read_partition(spark, TableRef("silver", "quarantine"), day)
    reasons = quarantine.groupBy("reason_code").count().orderBy(F.col("count").desc()).collect()
    lines.append(
        f"  {'silver.quarantine':<28} {sum(r[1] for r in reasons):>8} rows  "
        + ", ".join(f"{r[0]}={r[1]}" for r in reasons)
    )
    lines += [
        "",
        "Query it (make sql, or any Spark SQL client on this lakehouse):",
        f"  SELECT spend_category, count(*), sum(amount) FROM gold.expense_lines "
        f"WHERE business_date = DATE'{day}' GROUP BY spend_category;",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Generate sample data if needed and materialize one business date."""
    from pipelines.definitions import all_assets, build_resources

    root = Path(lakehouse_root())
    day = args.date or date.today() - timedelta(days=1)
    landing = root / "landing" / "expense_lines" / f"business_date={day.isoformat()}"
    if not landing.exists():
        sample_data.generate(root, day - timedelta(days=args.history_days - 1), day, args.rows)
        print(f"Wrote a sample landing zone under {root / 'landing'} ({args.rows} rows a day).")
    resources = build_resources()
    provider = resources["enrichment"].describe()
    print(f"Materializing {day} ... enrichment: {provider}", flush=True)
    result = materialize(
        all_assets,
        partition_key=day.isoformat(),
        resources=resources,
        instance=DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None,
        raise_on_error=False,
        # Step-level progress without Dagster's per-event debug lines.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    if not result.success:
        failed = [e.step_key for e in result.get_step_failure_events()]
        print(f"Run {result.run_id} failed at {', '.join(failed) or 'a check'}.", file=sys.stderr)
        return 1
    print(_summary(day, provider))
    return 0


def docs(args: argparse.Namespace) -> int:
    """Print (and open, where a browser is available) the latest GX Data Docs page."""
    import webbrowser

    from pipelines.resources.lakehouse import LakehouseResource

    docs_dir = LakehouseResource().data_docs_dir
    pages = sorted(
        Path(docs_dir or "/nonexistent").glob("validations/**/*.html"),
        key=lambda p: p.stat().st_mtime,
    )
    if not pages:
        print(f"No Data Docs yet under {docs_dir}: run `make run` first.", file=sys.stderr)
        return 1
    print(f"Data Docs index: {Path(docs_dir) / 'index.html'}")
    print(f"Latest validation: {pages[-1]}")
    if os.environ.get("DISPLAY") or sys.platform == "darwin":
        webbrowser.open(pages[-1].as_uri())
    return 0


def spark_conf_args(args: argparse.Namespace) -> int:
    """Print the project's Spark settings as ``--conf`` arguments (for spark-submit tools)."""
    from pipelines.resources.spark import spark_conf
    from pipelines.settings import spark_master

    conf = spark_conf(spark_master(), f"{lakehouse_root().rstrip('/')}/_warehouse")
    for key, value in conf.items():
        print(f"--conf\n{key}={value}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="pipelines.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="materialize the latest business date end to end")
    run_parser.add_argument("--date", type=date.fromisoformat, default=None)
    run_parser.add_argument("--rows", type=int, default=500, help="sample rows per day")
    run_parser.add_argument("--history-days", type=int, default=3)
    sub.add_parser("docs", help="print and open the latest Great Expectations Data Docs page")
    sub.add_parser("spark-conf", help="print the Spark settings as spark-submit --conf args")
    args = parser.parse_args()
    commands = {"run": run, "docs": docs, "spark-conf": spark_conf_args}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
