"""The lakehouse's global invariants, checked after every reliability case.

1. Nothing lost: per source and business date, bronze rows = silver rows + quarantined rows.
2. Nothing duplicated: a source's declared key is unique per business date in silver, and a gold
   table's key per business date in gold.
3. Nothing unvalidated published: every ``published`` event in ``ops.wap_ledger`` follows a
   passing ``audited`` event of the same staged version, and gold holds, at the version it names,
   as many rows of the date as that staged version; every gold commit that wrote data is such a
   publish (or a ``RESTORE`` to one).

Each check returns the violations as sentences (empty: it holds), so a case can assert on one of
them; ``assert_invariants`` runs them all. They read the tables as they are on disk, with no
knowledge of how a case got there (a crash, a retry, a concurrent writer).
"""

from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from infra import wap
from infra.lakehouse import LakehouseResource, TableRef
from transforms.contracts import CONTRACTS

QUARANTINE = TableRef("silver", "quarantine")
# Gold tables' natural keys (per business date); a later table is added here.
GOLD_KEYS: dict[str, tuple[str, ...]] = {
    "expense_lines": CONTRACTS["expense_lines"].key,
    "hr_cases": CONTRACTS["hr_cases"].key,
}
# Gold commits that change no row a reader sees as published data.
_METADATA_OPERATIONS = frozenset(
    {"CREATE TABLE", "ADD CONSTRAINT", "SET TBLPROPERTIES", "VACUUM START", "VACUUM END"}
)


def _tables(lakehouse: LakehouseResource, layer: str) -> list[str]:
    folder = Path(lakehouse.base.removeprefix("file://")) / layer
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "_delta_log").is_dir())


def _counts(df, *columns: str) -> dict[tuple, int]:
    return {tuple(r[:-1]): r[-1] for r in df.groupBy(*columns).count().collect()}


def lost_rows(spark: SparkSession, lakehouse: LakehouseResource) -> list[str]:
    """Per source and date with bronze rows: bronze = silver + quarantine."""
    problems = []
    quarantined = (
        _counts(lakehouse.read(spark, QUARANTINE), "source", "business_date")
        if lakehouse.exists(spark, QUARANTINE)
        else {}
    )
    for source in _tables(lakehouse, "bronze"):
        bronze = _counts(lakehouse.read(spark, TableRef("bronze", source)), "business_date")
        silver_table = TableRef("silver", source)
        silver = (
            _counts(lakehouse.read(spark, silver_table), "business_date")
            if lakehouse.exists(spark, silver_table)
            else {}
        )
        days = set(bronze) | set(silver) | {(d,) for s, d in quarantined if s == source}
        for (day,) in sorted(days):
            b, s = bronze.get((day,), 0), silver.get((day,), 0)
            q = quarantined.get((source, day), 0)
            if b != s + q:
                problems.append(f"{source} {day}: bronze {b} != silver {s} + quarantine {q}")
    return problems


def _duplicates(df, key: tuple[str, ...], label: str) -> list[str]:
    dupes = df.groupBy("business_date", *key).count().where(F.col("count") > 1).limit(20).collect()
    return [
        f"{label} {r['business_date']}: key {tuple(r[k] for k in key)} appears {r['count']} times"
        for r in dupes
    ]


def duplicate_keys(
    spark: SparkSession,
    lakehouse: LakehouseResource,
    gold_keys: dict[str, tuple[str, ...]] | None = None,
) -> list[str]:
    """Natural keys unique per business date: silver (contract keys) and gold (``GOLD_KEYS``)."""
    problems = []
    for source in _tables(lakehouse, "silver"):
        if source in CONTRACTS:
            df = lakehouse.read(spark, TableRef("silver", source))
            problems += _duplicates(df, CONTRACTS[source].key, f"silver.{source}")
    keys = GOLD_KEYS if gold_keys is None else gold_keys
    for table in _tables(lakehouse, "gold"):
        if table in keys:
            df = lakehouse.read(spark, TableRef("gold", table))
            problems += _duplicates(df, keys[table], f"gold.{table}")
    return problems


def unvalidated_publishes(spark: SparkSession, lakehouse: LakehouseResource) -> list[str]:
    """Every publish has a passing audit of its staged version; gold holds what was staged; every
    gold commit that wrote data is a publish in the ledger, or a RESTORE to one."""
    ledger = [
        r.asDict()
        for r in (
            lakehouse.read(spark, wap.WAP_LEDGER).collect()
            if lakehouse.exists(spark, wap.WAP_LEDGER)
            else []
        )
    ]
    problems = []
    published_versions: dict[str, set[int]] = {}
    for pub in (r for r in ledger if r["event"] == "published"):
        table, day, staged = pub["table"], pub["business_date"], pub["staged_version"]
        published_versions.setdefault(table, set()).add(pub["gold_version"])
        audits = [
            r
            for r in ledger
            if r["event"] == "audited"
            and (r["table"], r["business_date"], r["staged_version"]) == (table, day, staged)
            and r["at"] <= pub["at"]
        ]
        if not any(a["passed"] for a in audits):
            problems.append(
                f"gold.{table} {day} version {pub['gold_version']} published staged version "
                f"{staged} without a passing audit of it"
            )
            continue
        ref = wap.GoldTable(table)
        gold_rows = lakehouse.read_dates(spark, ref.gold, [day], pub["gold_version"]).count()
        staged_rows = lakehouse.read_dates(spark, ref.staging, [day], staged).count()
        if gold_rows != staged_rows:
            problems.append(
                f"gold.{table} {day} version {pub['gold_version']} holds {gold_rows} rows, "
                f"staged version {staged} held {staged_rows}"
            )
    for table in _tables(lakehouse, "gold"):
        history = (
            DeltaTable.forPath(spark, lakehouse.path(TableRef("gold", table)))
            .history()
            .select("version", "operation", "operationParameters", "operationMetrics")
            .collect()
        )
        allowed = published_versions.get(table, set())
        # Versions with no published data yet (the empty table, its constraints) are safe
        # targets of a RESTORE too.
        allowed |= {
            h["version"]
            for h in history
            if h["operation"] in _METADATA_OPERATIONS
            and all(
                e["operation"] in _METADATA_OPERATIONS
                for e in history
                if e["version"] <= h["version"]
            )
        }
        for h in sorted(history, key=lambda h: h["version"]):
            if h["operation"] in _METADATA_OPERATIONS or h["version"] in allowed:
                continue
            metrics = h["operationMetrics"] or {}
            if h["operation"] == "WRITE" and all(
                metrics.get(m, "0") == "0" for m in ("numOutputRows", "numRemovedFiles")
            ):
                continue  # an empty write (a table created empty first) publishes nothing
            if h["operation"] == "RESTORE":
                target = int((h["operationParameters"] or {}).get("version", -1))
                if target in allowed:
                    continue
            problems.append(
                f"gold.{table} version {h['version']} ({h['operation']}) was not published "
                "through write-audit-publish"
            )
    return problems


def violations(
    spark: SparkSession,
    lakehouse: LakehouseResource,
    gold_keys: dict[str, tuple[str, ...]] | None = None,
) -> list[str]:
    """Every invariant's violations (empty: the lakehouse is consistent)."""
    return [
        *lost_rows(spark, lakehouse),
        *duplicate_keys(spark, lakehouse, gold_keys),
        *unvalidated_publishes(spark, lakehouse),
    ]


def assert_invariants(
    spark: SparkSession,
    lakehouse: LakehouseResource,
    gold_keys: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Fail with every violation listed, one per line."""
    found = violations(spark, lakehouse, gold_keys)
    assert not found, "lakehouse invariants violated:\n" + "\n".join(found)
