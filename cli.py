"""``python -m cli run``: the nightly close on embedded defaults, end to end.

Writes a sample landing zone (if the dates have none), closes the last ``--days`` business dates
through Dagster in one ranged run, and prints the exceptions by type, match rates and how to query.
"""

import argparse
import os
import sys
from datetime import date, timedelta
from pathlib import Path

from dagster import AssetSelection, DagsterInstance, execute_job, reconstructable

from infra.settings import lakehouse_root
from sample import close as sample_close

# What the summary reads of each table (these columns only, where present), from delta-rs or
# Spark.
SUMMARY_COLUMNS = {
    "expense_lines": ["enrichment_status", "source", "model", "failure_kind"],
    "recon_exceptions": ["recon", "exception_type", "status", "age_days"],
    "close_summary": ["legal_entity", "recon", "match_rate", "ap_variance_unexplained"],
    "hr_cases": ["case_type", "urgency", "source", "model", "failure_kind", "urgency_failure_kind"],
    "close_narrative": ["legal_entity", "source", "model", "error", "narrative", "status"],
    "quarantine": ["source", "reason_code"],
}


def _none_first(values: tuple) -> tuple:
    """A sort key that orders None first, as Spark's ascending sort does."""
    return tuple((v is not None, v) for v in values)


class _Partition:
    """One business date of a table, as the summary reads it: the columns it prints, as an Arrow
    table (read with delta-rs on a local lakehouse: no JVM; through Spark on an object store).
    A day's partition of a few columns is small; the summary's group-bys run in Arrow."""

    def __init__(self, data) -> None:
        self.data = data

    @property
    def columns(self) -> list[str]:
        return list(self.data.column_names)

    def count(self, column: str | None = None, value: str | None = None) -> int:
        """Rows (where ``column`` equals ``value``)."""
        import pyarrow.compute as pc

        if column is None:
            return self.data.num_rows
        return int(pc.sum(pc.equal(self.data[column], value).fill_null(False)).as_py() or 0)

    def group_count(self, *keys: str) -> list[tuple]:
        """``(*key values, rows)`` per group, ordered by the keys (None first)."""
        counted = self.data.group_by(list(keys)).aggregate([([], "count_all")])
        rows = [(*(r[k] for k in keys), r["count_all"]) for r in counted.to_pylist()]
        return sorted(rows, key=lambda r: _none_first(r[:-1]))

    def exception_counts(self) -> list[dict]:
        """Per recon and exception type: open and closed items and the oldest's age."""
        import pyarrow as pa
        import pyarrow.compute as pc

        status = self.data["status"]
        table = self.data.append_column(
            "is_open", pc.equal(status, "open").fill_null(False).cast(pa.int64())
        ).append_column("is_closed", pc.equal(status, "closed").fill_null(False).cast(pa.int64()))
        grouped = table.group_by(["recon", "exception_type"]).aggregate(
            [("is_open", "sum"), ("is_closed", "sum"), ("age_days", "max")]
        )
        rows = [
            {
                "recon": r["recon"],
                "exception_type": r["exception_type"],
                "open": r["is_open_sum"],
                "closed": r["is_closed_sum"],
                "oldest": r["age_days_max"],
            }
            for r in grouped.to_pylist()
        ]
        return sorted(rows, key=lambda r: _none_first((r["recon"], r["exception_type"])))

    def rows(self, columns: list[str], order: list[str], within: dict | None = None) -> list[dict]:
        """A few columns of the rows (where each ``within`` column is one of its values),
        ordered by ``order`` (None first). For small results only (a summary's lines)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        table = self.data
        for column, values in (within or {}).items():
            table = table.filter(pc.is_in(table[column], value_set=pa.array(list(values))))
        found = table.select(columns).to_pylist()
        return sorted(found, key=lambda r: _none_first(tuple(r[c] for c in order)))


def _by_model(part: _Partition) -> str:
    """``source model=rows`` for each producer of a gold table's enriched values, most first."""
    counts = sorted(part.group_count("source", "model"), key=lambda r: -r[2])
    return "; ".join(f"{source} {model}={n}" for source, model, n in counts) or "none"


def _unavailable(part: _Partition, prefix: str = "") -> list[str]:
    """``LLM unavailable: N rows answered by the fallback model`` when the LLM missed some rows."""
    from infra.enrichment import llm_unavailable

    column = f"{prefix}failure_kind"
    if column not in part.columns:
        return []
    fell_back = part.count(column, "fallback")
    return [f"    {llm_unavailable(fell_back)}"] if fell_back else []


def _partition_reader(day: date, spark=None):
    """How the summary reads a table's partition of ``day``: ``(layer, name) -> _Partition`` or
    None where no run has written the table. A local lakehouse reads with delta-rs and Arrow (no
    JVM: an unchanged re-run never starts Spark); an object store, or any lakehouse when a
    ``spark`` session is given, through Spark."""
    from infra.lakehouse import LakehouseResource, TableRef

    lakehouse = LakehouseResource()
    local = lakehouse.local_folder()
    if local is not None and spark is None:
        from deltalake import DeltaTable

        def read_local(layer: str, name: str) -> _Partition | None:
            folder = local / layer / name
            if not (folder / "_delta_log").is_dir():
                return None
            table = DeltaTable(str(folder))
            present = {field.name for field in table.schema().fields}
            columns = [c for c in SUMMARY_COLUMNS[name] if c in present]
            return _Partition(
                table.to_pyarrow_table(columns=columns, filters=[("business_date", "=", day)])
            )

        return read_local
    if spark is None:
        from infra.spark import lakehouse_session

        spark = lakehouse_session()

    def read_spark(layer: str, name: str) -> _Partition | None:
        table = TableRef(layer, name)
        if not lakehouse.exists(spark, table):
            return None
        df = lakehouse.read_partition(spark, table, day)
        columns = [c for c in SUMMARY_COLUMNS[name] if c in df.columns]
        return _Partition(df.select(*columns).toArrow())

    return read_spark


def _summary(first: date, day: date, provider: str, read=None) -> str:
    """What ``cli run`` prints after a run: the day's gold tables and quarantine. ``read``:
    ``_partition_reader(day)`` unless given."""
    read = read or _partition_reader(day)
    span = f"{first} .. {day}" if first != day else f"{day}"
    lines = [f"Closed business dates {span}. Enrichment configured: {provider}.", ""]

    def published(name: str, layer: str = "gold") -> _Partition | None:
        """The day's partition of ``<layer>.<name>``, or None where no run has written it."""
        return read(layer, name)

    expenses = published("expense_lines")
    if expenses is not None:
        lines += _expense_lines(expenses, day)
    exceptions, summary = published("recon_exceptions"), published("close_summary")
    if exceptions is not None and summary is not None:
        lines += _reconciliations(exceptions, summary, day)
    cases = published("hr_cases")
    if cases is not None:
        lines += _hr_cases(cases, day)
    narratives = published("close_narrative")
    if narratives is not None:
        lines += _narratives(narratives)
    quarantine = published("quarantine", layer="silver")
    if quarantine is not None:  # a --select of gold alone may run no silver step
        reasons = quarantine.group_count("source", "reason_code")
        lines.append(
            f"\n  silver.quarantine on {day}: "
            + (", ".join(f"{r[0]}/{r[1]}={r[2]}" for r in reasons) or "none")
        )
    lines += [
        "",
        "Query it (make sql, or any Spark SQL client on this lakehouse):",
        f"  SELECT exception_type, status, count(*) FROM gold.recon_exceptions "
        f"WHERE business_date = DATE'{day}' GROUP BY ALL;",
    ]
    return "\n".join(lines)


def _expense_lines(expenses: _Partition, day: date) -> list[str]:
    lines = []
    lines.append(f"  gold.expense_lines        {expenses.count():>8} rows on {day}")
    status = expenses.group_count("enrichment_status", "source")
    lines.append("    enrichment: " + ", ".join(f"{r[0]}/{r[1]}={r[2]}" for r in status))
    # What actually labelled the lines: the history-trained model where there was history.
    lines.append(f"    labelled by: {_by_model(expenses)}")
    lines += _unavailable(expenses)
    return lines


def _reconciliations(exceptions: _Partition, summary: _Partition, day: date) -> list[str]:
    counts = exceptions.exception_counts()
    lines = ["", f"  Exceptions on {day} (gold.recon_exceptions), by type:"]
    lines.append(f"    {'recon':<16}{'exception_type':<24}{'open':>6}{'closed':>8}{'oldest':>8}")
    for r in counts:
        lines.append(
            f"    {r['recon']:<16}{r['exception_type']:<24}{r['open']:>6}{r['closed']:>8}"
            f"{r['oldest']:>7}d"
        )
    total_open = sum(r["open"] for r in counts)
    lines.append(f"    {'total open':<40}{total_open:>6}{sum(r['closed'] for r in counts):>8}")
    rates = summary.rows(
        ["legal_entity", "recon", "match_rate", "ap_variance_unexplained"],
        order=["legal_entity", "recon"],
        within={"recon": ["bank_gl", "ap_gl"]},
    )
    lines += ["", "  Match rates (gold.close_summary):"]
    for r in rates:
        rate = "n/a" if r["match_rate"] is None else f"{r['match_rate']:.1%}"
        extra = ""
        if r["recon"] == "ap_gl" and r["ap_variance_unexplained"] is not None:
            extra = f"  AP variance unexplained: {r['ap_variance_unexplained']}"
        lines.append(f"    {r['legal_entity']:<6}{r['recon']:<10}{rate:>8}{extra}")
    return lines


def _hr_cases(cases: _Partition, day: date) -> list[str]:
    lines = []
    by_type = cases.group_count("case_type", "urgency")
    lines.append(
        f"\n  gold.hr_cases on {day}: {cases.count()} cases"
        + (" (" + ", ".join(f"{r[0]}/{r[1]}={r[2]}" for r in by_type) + ")" if by_type else "")
    )
    if by_type:
        lines.append(f"    labelled by: {_by_model(cases)}")
        lines += _unavailable(cases) + _unavailable(cases, "urgency_")
    return lines


def _narratives(narrative_rows: _Partition) -> list[str]:
    lines: list[str] = []
    from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
    from infra.enrichment import llm_unavailable

    narratives = narrative_rows.rows(
        ["legal_entity", "source", "model", "error", "narrative", "status"],
        order=["legal_entity"],
    )
    if narratives:
        authors = sorted(
            {"an LLM" if r["source"] == "llm" else f"the {r['model']} (no LLM)" for r in narratives}
        )
        lines += [
            "",
            f"  The night per entity (gold.close_narrative, written by {' and '.join(authors)}):",
        ]
        fell_back = [r for r in narratives if (r["error"] or "").startswith(FALLBACK_ERROR_PREFIX)]
        if fell_back:
            lines.append(f"    {llm_unavailable(len(fell_back))}")
        lines += [
            f"    {r['narrative']}"
            if r["narrative"] is not None
            else f"    {r['legal_entity']}: no paragraph ({r['status']}: {r['error']})"
            for r in narratives
        ]
    return lines


def whole_steps(selection: str | None) -> AssetSelection | None:
    """The Dagster asset selection ``selection``, widened to whole steps.

    A multi-asset writes all of its keys in one step (silver and quarantine of a source, the three
    reconciliation tables), so Dagster refuses a subset of it; the selection takes the step's
    other keys too, as the UI does. An unknown asset is a usage error, not a stack trace.
    """
    from dagster._core.errors import DagsterInvalidSubsetError

    from pipelines.definitions import defs

    if not selection:
        return None
    widened = AssetSelection.from_string(selection).required_multi_asset_neighbors()
    try:
        widened.resolve(defs.resolve_asset_graph())
    except DagsterInvalidSubsetError as error:
        raise SystemExit(f"--select {selection!r}: {error}") from None
    return widened


def run(args: argparse.Namespace) -> int:
    """Generate sample data if needed and run the close for the last ``--days`` business dates.

    The dates run in one ranged run (as a backfill would), oldest first: the reconciliations look
    back over earlier dates, so the history they need is in silver.
    """
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from infra.versions import RECOMPUTE_TAG
    from pipelines.definitions import build_resources, close_job, defs

    root = Path(lakehouse_root())
    day = args.date or date.today() - timedelta(days=1)
    first = day - timedelta(days=args.days - 1)
    missing = [
        d
        for d in (first + timedelta(days=i) for i in range(args.days))
        if not (root / "landing" / "gl_journal_lines" / f"business_date={d.isoformat()}").exists()
    ]
    if missing:
        sample_close.generate_close(
            root, first, day, gl_lines_per_day=args.gl_lines, expense_rows=args.rows
        )
        print(f"Wrote a sample landing zone for {first} .. {day} under {root / 'landing'}.")
    resources = build_resources()
    provider = resources["enrichment"].describe()
    scope = f" ({args.select})" if args.select else ""
    print(f"Closing {first} .. {day}{scope} ... enrichment: {provider}", flush=True)
    instance = (
        DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    )
    selection = whole_steps(args.select)
    # The instance is closed with the run (an ephemeral one holds its storage in memory).
    with (
        instance,
        execute_job(
            # The definitions' job and executor: ready steps run at once (infra/executor.py).
            reconstructable(close_job),
            instance=instance,
            # Everything by default; e.g. '*gold_expense_lines' for one table and what it needs.
            asset_selection=None
            if selection is None
            else sorted(selection.resolve(defs.resolve_asset_graph())),
            raise_on_error=False,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: day.isoformat(),
                **({RECOMPUTE_TAG: "true"} if args.recompute else {}),
            },
            # Step-level progress without Dagster's per-event debug lines.
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        ) as result,
    ):
        return _report(result, first, day, provider)


def _report(result, first: date, day: date, provider: str) -> int:
    """Print how the run ended (and its summary); the exit status."""
    if not result.success:
        failed = [e.step_key for e in result.get_step_failure_events()]
        print(f"Run {result.run_id} failed at {', '.join(failed) or 'a check'}.", file=sys.stderr)
        return 1
    print(_skipped(result))
    print(_summary(first, day, provider))
    return 0


def _skipped(result) -> str:
    """How many steps found every date unchanged and skipped it (``infra/versions.py``)."""
    steps, unchanged = set(), set()
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        if "dates_computed" not in metadata:
            continue
        steps.add(event.step_key)
        if metadata["dates_computed"].value == 0:
            unchanged.add(event.step_key)
    if not unchanged:
        return f"Computed every date of all {len(steps)} steps."
    return (
        f"{len(unchanged)} of {len(steps)} steps found their inputs and code unchanged and "
        "skipped (make run ARGS='--recompute' recomputes everything)."
    )


def docs(args: argparse.Namespace) -> int:
    """Print (and open, where a browser is available) the latest GX Data Docs page."""
    import webbrowser

    from infra.lakehouse import LakehouseResource

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
    from infra.settings import spark_master
    from infra.spark import spark_conf

    conf = spark_conf(
        spark_master(), f"{lakehouse_root().rstrip('/')}/_warehouse", long_lived=args.long_lived
    )
    for key, value in conf.items():
        print(f"--conf\n{key}={value}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="cli")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run the close for the latest business dates")
    run_parser.add_argument("--date", type=date.fromisoformat, default=None)
    run_parser.add_argument("--rows", type=int, default=300, help="sample expense lines per day")
    run_parser.add_argument("--gl-lines", type=int, default=600, help="sample GL lines per day")
    run_parser.add_argument(
        "--days", type=int, default=3, help="business dates to close, ending with --date"
    )
    run_parser.add_argument(
        "--select",
        default=None,
        help="Dagster asset selection (default: the whole close); "
        "'*gold_expense_lines' runs one gold table and everything upstream of it",
    )
    run_parser.add_argument(
        "--recompute",
        action="store_true",
        help="recompute every date even where inputs and code are unchanged",
    )
    sub.add_parser("docs", help="print and open the latest Great Expectations Data Docs page")
    conf_parser = sub.add_parser(
        "spark-conf", help="print the Spark settings as spark-submit --conf args"
    )
    conf_parser.add_argument(
        "--long-lived",
        action="store_true",
        help="for a driver that serves for long (the Thrift Server): the JVM's own compiler",
    )
    args = parser.parse_args()
    commands = {"run": run, "docs": docs, "spark-conf": spark_conf_args}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
