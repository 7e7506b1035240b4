"""Delta Lake storage under ``LAKEHOUSE_ROOT``: paths, partition writes, the catalog, the WAP gate.

Every dated table is partitioned by ``business_date`` and every write of a date replaces exactly
that date, so re-running a date is idempotent.
"""

import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TypeVar

from dagster import ConfigurableResource
from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from deltalake.exceptions import CommitFailedError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from infra.landing import LandedFile, check_landed_files, refuse_incomplete, refuse_strays
from infra.settings import audit_window_properties, lakehouse_root
from infra.spark import SessionSource, session_of
from transforms.contracts import CORRUPT_RECORD_COLUMN, SourceContract
from transforms.drift import DriftReport, SchemaDriftError, detect_drift
from transforms.frames import local_frame
from transforms.ingest import EXTRA_COLUMNS_COLUMN, SOURCE_FILE_COLUMN

_COMMIT_FILE = re.compile(r"\d{20}\.json")
_LOG = logging.getLogger(__name__)
# Delta's optimistic concurrency: another writer committed to the table between this write's read
# of it and its commit (Spark's writer, or delta-rs's). Nothing of the losing write is committed
# (its data files are never referenced), so writing it again is safe, and every write of ours
# replaces its dates (or appends ledger rows once), so the retry ends where a serial run would.
WRITE_CONFLICTS = (
    DeltaConcurrentModificationException,
    ConcurrentWriteException,
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentDeleteDeleteException,
    ConcurrentTransactionException,
    MetadataChangedException,
    ProtocolChangedException,
    CommitFailedError,
)
# Attempts of one write against concurrent commits before it is refused (WriteConflictError).
WRITE_ATTEMPTS = 4
T = TypeVar("T")
LAYERS = ("bronze", "silver", "staging", "gold", "ops")
# (Spark application, table, location) already registered in the catalog by this process.
_REGISTERED: set[tuple[str, str, str]] = set()
_REGISTER_LOCK = threading.Lock()


@dataclass(frozen=True)
class TableRef:
    """A table in the lakehouse: ``layer.name``."""

    layer: str
    name: str

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"unknown layer {self.layer!r}; expected one of {LAYERS}")
        if not self.name.replace("_", "").isalnum():
            raise ValueError(f"table name must be alphanumeric with underscores: {self.name!r}")

    @property
    def qualified(self) -> str:
        """``layer.name`` as the Spark catalog knows it."""
        return f"{self.layer}.{self.name}"


def date_predicate(
    business_date: date | Iterable[date], extra: dict[str, str] | None = None
) -> str:
    """A ``replaceWhere`` predicate for business dates (and optional equality filters).

    One date gives ``business_date = DATE'…'``; several give ``business_date IN (…)``, so a run
    over a range replaces exactly its dates in one commit. Delta's ``replaceWhere`` takes SQL text
    only; every value here is a ``date`` or a name from our own code, formatted and quoted, never
    user input.
    """
    days = [business_date] if isinstance(business_date, date) else sorted(set(business_date))
    if not days or not all(isinstance(d, date) for d in days):
        raise TypeError("business dates must be datetime.date values (at least one)")
    if len(days) == 1:
        clauses = [f"business_date = DATE'{days[0].isoformat()}'"]
    else:
        clauses = ["business_date IN (" + ", ".join(f"DATE'{d.isoformat()}'" for d in days) + ")"]
    for column, value in (extra or {}).items():
        if not column.isidentifier() or "'" in value:
            raise ValueError(f"unsafe predicate {column}={value!r}")
        clauses.append(f"{column} = '{value}'")
    return " AND ".join(clauses)


def _all_nullable(schema: StructType) -> StructType:
    """``schema`` with every field, element and value nullable (what Delta's writer stores)."""

    def relax(node: object) -> object:
        if isinstance(node, dict):
            return {
                k: True if k in ("nullable", "containsNull", "valueContainsNull") else relax(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [relax(v) for v in node]
        return node

    return StructType.fromJson(relax(schema.jsonValue()))


def _rust_predicate(days: list[date], extra: dict[str, str] | None = None) -> str:
    """``date_predicate`` in delta-rs's SQL (DataFusion): the same dates and equalities."""
    date_predicate(days, extra)  # the same validation of dates and names
    clauses = [
        "business_date IN (" + ", ".join(f"'{d.isoformat()}'" for d in sorted(set(days))) + ")"
    ]
    clauses += [f"{column} = '{value}'" for column, value in (extra or {}).items()]
    return " AND ".join(clauses)


class WriteConflictError(RuntimeError):
    """A write lost every attempt to concurrent commits on its table; nothing of it committed."""


def retry_conflicts(write: Callable[[], T], table: str, attempts: int = WRITE_ATTEMPTS) -> T:
    """Run ``write`` (one Delta commit) again while it loses to a concurrent commit.

    Returns what ``write`` returns, with the attempt it took on a ``Commit``. After ``attempts``
    losses raises ``WriteConflictError`` naming the table and the last conflict.
    """
    for attempt in range(1, attempts + 1):
        try:
            result = write()
        except WRITE_CONFLICTS as error:
            conflict = type(error).__name__
            if attempt == attempts:
                raise WriteConflictError(
                    f"{table}: {attempts} attempts to commit each lost to a concurrent writer "
                    f"(last: {conflict}); nothing of this write was committed, re-run it"
                ) from error
            _LOG.warning("%s: %s on attempt %d; writing again", table, conflict, attempt)
            # Backoff with jitter, so two losers do not collide again in lockstep.
            time.sleep(min(2.0, 0.25 * 2**attempt) * random.uniform(0.5, 1.0))
            continue
        return replace(result, attempts=attempt) if isinstance(result, Commit) else result
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Commit:
    """One Delta commit this process made: its version, Delta's operation metrics, and the
    attempt that committed (more than 1 when it lost to concurrent writers first)."""

    version: int
    metrics: dict[str, str] = field(default_factory=dict)
    attempts: int = 1

    @property
    def rows(self) -> int:
        """Rows the commit wrote (``numOutputRows``)."""
        return int(self.metrics.get("numOutputRows", 0))


def _local(path: str) -> Path | None:
    """The local folder of a table path, or None on an object store."""
    if "://" in path and not path.startswith("file:"):
        return None
    return Path(path.removeprefix("file://").removeprefix("file:"))


def _log_versions(path: str) -> list[int] | None:
    """Commit versions in a local table's ``_delta_log`` (None on object stores)."""
    folder = _local(path)
    if folder is None:
        return None
    log = folder / "_delta_log"
    if not log.is_dir():
        return []
    return sorted(int(p.name[:20]) for p in log.glob("*.json") if _COMMIT_FILE.fullmatch(p.name))


def find_commit(spark: SparkSession, path: str, token: str) -> Commit:
    """The commit whose ``userMetadata`` is ``token``, newest first.

    Local tables read the commit files themselves (milliseconds; ``DeltaTable.history`` costs a
    Spark job each time); object stores ask Delta's history. Delta makes no commit for a write
    that changes nothing (no rows to add, none to replace): that reads as the current version,
    with no rows written.
    """
    versions = _log_versions(path)
    if versions is not None:
        log = _local(path) / "_delta_log"
        for version in reversed(versions[-50:]):
            with open(log / f"{version:020d}.json") as commit_file:
                for line in commit_file:
                    info = json.loads(line).get("commitInfo")
                    if info is not None:
                        if info.get("userMetadata") == token:
                            return Commit(version, dict(info.get("operationMetrics") or {}))
                        break
    else:
        history = DeltaTable.forPath(spark, path).history(50)
        row = (
            history.where(F.col("userMetadata") == token)
            .select("version", "operationMetrics")
            .first()
        )
        if row is not None:
            return Commit(int(row[0]), dict(row[1] or {}))
        versions = [int(DeltaTable.forPath(spark, path).history(1).first()["version"])]
    return Commit(versions[-1], {"numOutputRows": "0"})


def commit_notes(spark: SparkSession, path: str, limit: int = 50) -> list[tuple[int, str | None]]:
    """``(version, userMetadata)`` of a table's last ``limit`` commits, oldest first.

    Local tables read the commit files (no Spark job); object stores ask Delta's history.
    """
    versions = _log_versions(path)
    if versions is None:
        history = DeltaTable.forPath(spark, path).history(limit).select("version", "userMetadata")
        return sorted((int(r[0]), r[1]) for r in history.collect())
    log = _local(path) / "_delta_log"
    notes = []
    for version in versions[-limit:]:
        note = None
        with open(log / f"{version:020d}.json") as commit_file:
            for line in commit_file:
                info = json.loads(line).get("commitInfo")
                if info is not None:
                    note = info.get("userMetadata")
                    break
        notes.append((version, note))
    return notes


class LakehouseResource(ConfigurableResource):
    """Reads and writes Delta tables under ``root`` (``LAKEHOUSE_ROOT`` when empty)."""

    root: str = ""

    @property
    def base(self) -> str:
        """The lakehouse root, without a trailing slash."""
        return (self.root or lakehouse_root()).rstrip("/")

    def local_folder(self) -> Path | None:
        """The lakehouse's local folder, or None on an object store."""
        return _local(self.base)

    @property
    def data_docs_dir(self) -> str | None:
        """Where Great Expectations Data Docs are written (local lakehouses only)."""
        if "://" in self.base and not self.base.startswith("file://"):
            return None
        return f"{self.base.removeprefix('file://')}/_data_docs"

    def landing_path(self, source: str, business_date: date) -> str:
        """Where a source's files for a date land."""
        return f"{self.base}/landing/{source}/business_date={business_date.isoformat()}"

    def read_landing(
        self, spark: SparkSession, contract: SourceContract, business_date: date
    ) -> DataFrame:
        """A source's landed rows for a date (see ``read_landing_checked``), drift refused."""
        return self.read_landing_checked(spark, contract, business_date)[0]

    def read_landed_documents(
        self, spark: SparkSession, source: str, business_dates: Iterable[date]
    ) -> DataFrame:
        """A document source's landed files of the given dates: ``path``, ``content`` (bytes),
        ``business_date``; one Spark read for all the dates.

        A folder holding a file of another type (a transfer under a temporary name) raises
        ``LandingRefusedError``; a file that is of the right type but cannot be opened is read
        as it is, and quarantined by silver. Dates with no folder have no rows.
        """
        folders = {}
        for day in sorted(set(business_dates)):
            location = self.landing_path(source, day)
            local = _local(location)
            if local is not None:
                if not local.is_dir():
                    continue
                refuse_strays(local, "documents")
            folders[location] = day
        schema = "path string, content binary, business_date date"
        if not folders:
            return local_frame(spark, [], schema)
        files = (
            spark.read.format("binaryFile")
            .option("ignoreMissingFiles", "true")
            .load(list(folders))
            .where(~F.regexp_extract("path", r"/([^/]*)$", 1).rlike(r"^[._]"))
        )
        day = F.to_date(F.regexp_extract("path", r"/business_date=(\d{4}-\d{2}-\d{2})/", 1))
        return files.select("path", "content", day.alias("business_date"))

    def read_landing_checked(
        self, spark: SparkSession, contract: SourceContract, business_date: date
    ) -> tuple[DataFrame, DriftReport]:
        """Read a source's landed files for a date, every declared column as a string.

        Each file is checked first (``infra/landing.py``): one that is incomplete, not UTF-8, of
        0 bytes or under a temporary name raises ``LandingRefusedError`` naming it. The files'
        own columns are compared with the contract, file by file (CSV headers may differ in
        order and extras between files): a missing required column or a retyped one raises
        ``SchemaDriftError`` (nothing is null-filled); columns the contract does not declare are
        kept as JSON in ``_extra_columns`` and reported. CSV/JSON lines that do not parse are kept
        whole in ``_corrupt_record``. A source that does not land daily and has no files for the
        date reads as no rows.
        """
        location = self.landing_path(contract.name, business_date)
        folder = _local(location)
        if folder is None:
            # Object stores: Spark lists the folder and reads the first file's header.
            observed = self._observed_schema(spark, contract, location)
            groups = [([location], observed)]
            checked: list[LandedFile] = []
        else:
            checked = check_landed_files(folder, contract.file_format) if folder.is_dir() else []
            if not checked:
                if contract.lands_daily:
                    raise FileNotFoundError(
                        f"no {contract.name} files landed for {business_date} in {location}"
                    )
                empty = local_frame(spark, [], contract.landing_schema())
                empty = empty.withColumn(SOURCE_FILE_COLUMN, F.lit(None).cast("string"))
                return empty, detect_drift(contract, contract.landing_schema())
            paths = [str(f.path) for f in checked]
            if contract.file_format == "csv":
                # Each file by its own header: files of one delivery may order columns differently.
                by_header: dict[tuple[str, ...], list[str]] = {}
                for f in checked:
                    by_header.setdefault(f.header, []).append(str(f.path))
                groups = [
                    (files, StructType([StructField(n, StringType(), True) for n in header]))
                    for header, files in by_header.items()
                ]
            else:
                groups = [(paths, self._observed_schema(spark, contract, paths))]
        for files, observed in groups:
            drift = detect_drift(contract, observed)
            if drift.breaking:
                names = ", ".join(Path(f).name for f in files)
                raise SchemaDriftError(f"{drift.describe()} Files: {names}.")
        refuse_incomplete(checked)
        seen: dict[str, StructField] = {}
        for _, observed in groups:
            for f in observed.fields:
                seen.setdefault(f.name, f)
        frames = [self._read_landed(spark, contract, files, observed) for files, observed in groups]
        out = frames[0]
        for frame in frames[1:]:
            out = out.unionByName(frame)
        return out, detect_drift(contract, StructType(list(seen.values())))

    @staticmethod
    def _read_landed(
        spark: SparkSession, contract: SourceContract, files: list[str], observed: StructType
    ) -> DataFrame:
        """Files sharing one set of columns, in the landing shape (see ``read_landing_checked``)."""
        declared = set(contract.column_names)
        extras = [f.name for f in observed.fields if f.name not in declared]
        present = {f.name for f in observed.fields}
        if contract.file_format == "parquet":
            raw = spark.read.parquet(*files).withColumn(
                CORRUPT_RECORD_COLUMN, F.lit(None).cast("string")
            )
            raw = raw.select(
                *[F.col(f"`{c}`").cast("string").alias(c) for c in sorted(present)],
                CORRUPT_RECORD_COLUMN,
                F.col("_metadata.file_path").alias(SOURCE_FILE_COLUMN),
            )
        else:
            # Every column of the file as a string, by name (never by position), plus the
            # corrupt-record column for lines that do not parse.
            schema = StructType(
                [StructField(f.name, StringType(), True) for f in observed.fields]
                + [StructField(CORRUPT_RECORD_COLUMN, StringType(), True)]
            )
            reader = (
                spark.read.schema(schema)
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", CORRUPT_RECORD_COLUMN)
            )
            if contract.file_format == "csv":
                reader = (
                    reader.format("csv")
                    .option("header", "true")
                    .option("multiLine", "true")
                    .option("escape", '"')
                )
            else:
                reader = reader.format("json")
            raw = reader.load(files).withColumn(SOURCE_FILE_COLUMN, F.col("_metadata.file_path"))
        columns = [
            F.col(f"`{c}`") if c in present else F.lit(None).cast("string").alias(c)
            for c in contract.column_names
        ]
        extra = (
            F.to_json(F.struct(*[F.col(f"`{c}`") for c in extras]))
            if extras
            else F.lit(None).cast("string")
        )
        return raw.select(
            *columns,
            CORRUPT_RECORD_COLUMN,
            extra.alias(EXTRA_COLUMNS_COLUMN),
            SOURCE_FILE_COLUMN,
        )

    @staticmethod
    def _observed_schema(
        spark: SparkSession, contract: SourceContract, location: str | list[str]
    ) -> StructType:
        """The columns (and, for typed formats, types) the landed files actually carry."""
        paths = [location] if isinstance(location, str) else location
        if contract.file_format == "parquet":
            return spark.read.parquet(*paths).schema
        if contract.file_format == "jsonl":
            return spark.read.option("samplingRatio", "1.0").json(paths).schema
        header = spark.read.option("header", "true").csv(paths).schema
        return StructType([StructField(f.name, StringType(), True) for f in header.fields])

    def append(self, df: DataFrame, table: TableRef, partitioned: bool = True) -> Commit:
        """Append ``df`` to ``table`` in one commit (ledgers: many rows, one commit per step)."""
        token = uuid.uuid4().hex
        writer = (
            df.write.format("delta")
            .mode("append")
            .option("userMetadata", token)
            .option("mergeSchema", "true")
        )
        if partitioned:
            writer = writer.partitionBy("business_date")

        def write() -> Commit:
            writer.save(self.path(table))
            return find_commit(df.sparkSession, self.path(table), token)

        commit = retry_conflicts(write, table.qualified)
        self.register(df.sparkSession, table)
        return commit

    def _create_empty(self, df: DataFrame, path: str) -> None:
        """Create ``path`` as an empty Delta table of ``df``'s columns, partitioned by date.

        A local lakehouse creates it with delta-rs (one log file, milliseconds; Spark's empty
        write costs a job and a commit, for each of the forty-odd tables a new lakehouse gets).
        Every column is nullable, as Spark's own writer makes them; the table gets the same
        properties (the audit window). An object store, or a type delta-rs cannot store, goes
        through Spark.
        """
        folder = _local(path)
        schema = _all_nullable(df.schema)
        if folder is None or "void" in schema.simpleString():
            df.limit(0).write.format("delta").partitionBy("business_date").save(path)
            return
        from deltalake import write_deltalake
        from pyspark.sql.pandas.types import to_arrow_schema

        write_deltalake(
            str(folder),
            to_arrow_schema(schema).empty_table(),
            # Another run created it meanwhile: theirs is the same table.
            mode="ignore",
            partition_by=["business_date"],
            configuration=audit_window_properties(),
        )

    def write_rows(
        self,
        spark: SparkSession,
        rows: list[dict],
        schema: str | StructType,
        table: TableRef,
        replace_dates: Iterable[date] | None = None,
        extra_predicate: dict[str, str] | None = None,
        partitioned: bool = True,
    ) -> Commit:
        """Write a ledger's rows, built in Python, to ``table`` in one commit.

        Appends, or with ``replace_dates`` replaces those business dates (and ``extra_predicate``
        equalities) like ``write_dates``. ``schema`` is the table's Spark schema or DDL. On a
        local lakehouse delta-rs writes the commit: tens of milliseconds, where Spark's writer
        spends about half a second per commit (a job, a snapshot rebuild, a checksum) even for
        one row, and a close writes its ledgers about seventy times. Both follow the Delta
        protocol, so the table stays one table for every reader and writer (a commit is a
        put-if-absent of the next log file). On an object store Spark writes it.
        """
        folder = _local(self.path(table))
        if folder is None:
            # Written, not joined: createDataFrame's RDD (local_frame's job would buy nothing).
            frame = spark.createDataFrame(rows, schema)
            if replace_dates is None:
                return self.append(frame, table, partitioned)
            return self.write_dates(frame, table, replace_dates, extra_predicate)
        import pyarrow as pa
        from deltalake import CommitProperties, write_deltalake
        from pyspark.sql.pandas.types import to_arrow_schema
        from pyspark.sql.types import _parse_datatype_string

        struct = _parse_datatype_string(schema) if isinstance(schema, str) else schema
        token = uuid.uuid4().hex
        data = pa.Table.from_pylist(
            [r.asDict() if hasattr(r, "asDict") else r for r in rows],
            schema=to_arrow_schema(struct),
        )

        def write() -> Commit:
            write_deltalake(
                str(folder),
                data,
                mode="append" if replace_dates is None else "overwrite",
                predicate=None
                if replace_dates is None
                else _rust_predicate(list(replace_dates), extra_predicate),
                partition_by=["business_date"] if partitioned else None,
                schema_mode="merge" if replace_dates is None else None,
                # Spark's writer puts the same key in commitInfo: find_commit reads either.
                commit_properties=CommitProperties(custom_metadata={"userMetadata": token}),
                # A table delta-rs creates keeps the audit window Spark gives its own.
                configuration=audit_window_properties(),
            )
            return find_commit(spark, self.path(table), token)

        commit = retry_conflicts(write, table.qualified)
        self.register(spark, table)
        return Commit(commit.version, {"numOutputRows": str(len(rows))}, commit.attempts)

    def path(self, table: TableRef) -> str:
        """Storage location of a table."""
        return f"{self.base}/{table.layer}/{table.name}"

    def exists(self, spark: SparkSession, table: TableRef) -> bool:
        """Whether the table has been written."""
        return DeltaTable.isDeltaTable(spark, self.path(table))

    def register(self, spark: SparkSession, table: TableRef) -> None:
        """Make ``layer.name`` resolve in the Spark catalog to this lakehouse's table."""
        location = self.path(table)
        known = (spark.sparkContext.applicationId, table.qualified, location)
        if known in _REGISTERED:
            return  # already registered by this Spark application: skip two catalog round trips
        # Steps of a run may register at once (infra/executor.py): one catalog change at a time.
        with _REGISTER_LOCK:
            self._register(spark, table, location, known)

    def _register(
        self, spark: SparkSession, table: TableRef, location: str, known: tuple[str, str, str]
    ) -> None:
        if known in _REGISTERED:
            return
        _REGISTERED.difference_update({k for k in _REGISTERED if k[1] == table.qualified})
        # The metastore's own record (no Delta log read, unlike DESCRIBE DETAIL).
        catalog = spark._jsparkSession.sharedState().externalCatalog()
        if not catalog.databaseExists(table.layer):
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {table.layer}")
        if catalog.tableExists(table.layer, table.name):
            current = str(catalog.getTable(table.layer, table.name).location().toString())
            if current.rstrip("/").removeprefix("file:") == location.removeprefix("file:"):
                _REGISTERED.add(known)
                return
            # The catalog points at another root (a test, a moved lakehouse): repoint it. The
            # table is external, so dropping the entry deletes no data.
            spark.sql(f"DROP TABLE {table.qualified}")
        spark.sql(f"CREATE TABLE {table.qualified} USING DELTA LOCATION '{location}'")
        _REGISTERED.add(known)

    def write_partition(
        self,
        df: DataFrame,
        table: TableRef,
        business_date: date,
        extra_predicate: dict[str, str] | None = None,
    ) -> int:
        """Replace one business date of ``table`` with ``df``; return the new Delta version."""
        return self.write_dates(df, table, [business_date], extra_predicate).version

    def write_dates(
        self,
        df: DataFrame,
        table: TableRef,
        business_dates: Iterable[date],
        extra_predicate: dict[str, str] | None = None,
        user_metadata: str | None = None,
    ) -> Commit:
        """Replace the given business dates of ``table`` with ``df`` in one Delta commit.

        A date of the list with no rows in ``df`` is emptied; a row of another date is refused by
        Delta. Returns the commit (version, rows written) without another Spark job. A write that
        loses to a concurrent commit is written again (``retry_conflicts``). ``user_metadata``
        (unique per write) is stored in the commit instead of a random token, so the commit
        itself says what it was (the publish gate's record).
        """
        predicate = date_predicate(list(business_dates), extra_predicate)
        path = self.path(table)
        spark = df.sparkSession
        token = user_metadata or uuid.uuid4().hex

        def write() -> Commit:
            if not DeltaTable.isDeltaTable(spark, path):
                # Delta checks rows against replaceWhere only when the table exists: create it
                # empty first, so even the first write refuses a row of another date.
                self._create_empty(df, path)
            (
                df.write.format("delta")
                .mode("overwrite")
                .option("replaceWhere", predicate)
                # Additive schema changes (a new nullable column) evolve the table; a changed
                # type still fails the write.
                .option("mergeSchema", "true")
                # Finds this commit in the log afterwards, whoever else commits meanwhile.
                .option("userMetadata", token)
                .partitionBy("business_date")
                .save(path)
            )
            return find_commit(spark, path, token)

        commit = retry_conflicts(write, table.qualified)
        self.register(spark, table)
        return commit

    def read_dates(
        self,
        spark: SparkSession,
        table: TableRef,
        business_dates: Iterable[date],
        version: int | None = None,
    ) -> DataFrame:
        """The given business dates of a table (a partition filter: only their files are read)."""
        return self.read(spark, table, version).where(
            F.col("business_date").isin([F.lit(d) for d in sorted(set(business_dates))])
        )

    def read(self, spark: SparkSession, table: TableRef, version: int | None = None) -> DataFrame:
        """The whole table, optionally as of a Delta version."""
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(table))

    def read_partition(
        self, spark: SparkSession, table: TableRef, business_date: date, version: int | None = None
    ) -> DataFrame:
        """One business date of a table."""
        return self.read(spark, table, version).where(
            F.col("business_date") == F.lit(business_date)
        )

    def read_rows(
        self,
        spark: SparkSession | SessionSource,
        table: TableRef,
        columns: list[str],
        equals: dict[str, object] | None = None,
        within: dict[str, list] | None = None,
        at_most: dict[str, object] | None = None,
        optional: Iterable[str] = (),
    ) -> list[dict]:
        """A few rows of a small table (a ledger), as dicts; none when it was never written.

        ``equals``, ``within`` and ``at_most`` filter a column to a value, a list of values or an
        upper bound. ``optional`` columns are read too, as None where the table has no such
        column yet (a ledger written before the column was added). A local lakehouse reads with
        delta-rs (milliseconds, no Spark job; a ``SessionSource`` is not called); an object store
        through Spark.
        """
        equals, within, at_most = equals or {}, within or {}, at_most or {}
        optional = list(optional)
        folder = _local(self.path(table))
        if folder is not None:
            if not (folder / "_delta_log").is_dir():
                return []
            from deltalake import DeltaTable as RustDeltaTable

            filters = [
                *((c, "=", v) for c, v in equals.items()),
                *((c, "in", list(v)) for c, v in within.items()),
                *((c, "<=", v) for c, v in at_most.items()),
            ]
            delta = RustDeltaTable(str(folder))
            present = {f.name for f in delta.schema().fields}
            found = [c for c in optional if c in present]
            rows = delta.to_pyarrow_table(
                columns=[*columns, *found], filters=filters or None
            ).to_pylist()
        else:
            spark = session_of(spark)
            if not self.exists(spark, table):
                return []
            df = self.read(spark, table)
            for column, value in equals.items():
                df = df.where(F.col(column) == F.lit(value))
            for column, values in within.items():
                df = df.where(F.col(column).isin([F.lit(v) for v in values]))
            for column, value in at_most.items():
                df = df.where(F.col(column) <= F.lit(value))
            found = [c for c in optional if c in df.columns]
            rows = [row.asDict() for row in df.select(*columns, *found).collect()]
        missing = [c for c in optional if c not in found]
        return [{**row, **dict.fromkeys(missing)} for row in rows] if missing else rows

    def current_version(self, spark: SparkSession | SessionSource, table: TableRef) -> int | None:
        """The table's current Delta version, None when it was never written. A local table's
        ``_delta_log`` is listed without Spark (a ``SessionSource`` is not called); an object
        store's table asks Delta's history."""
        versions = _log_versions(self.path(table))
        if versions is not None:
            return versions[-1] if versions else None
        spark = session_of(spark)
        if not self.exists(spark, table):
            return None
        history = DeltaTable.forPath(spark, self.path(table)).history(1)
        return int(history.select("version").first()[0])

    def version(self, spark: SparkSession | SessionSource, table: TableRef) -> int:
        """The table's current Delta version, of a table that has been written.

        Raises:
            ValueError: the table was never written.
        """
        current = self.current_version(spark, table)
        if current is None:
            raise ValueError(f"{table.qualified} has never been written ({self.path(table)})")
        return current
