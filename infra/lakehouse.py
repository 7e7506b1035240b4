"""Delta Lake storage under ``LAKEHOUSE_ROOT``: paths, partition writes, the catalog, the WAP gate.

Every dated table is partitioned by ``business_date`` and every write of a date replaces exactly
that date, so re-running a date is idempotent.
"""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dagster import ConfigurableResource
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from infra.settings import lakehouse_root
from transforms.contracts import CORRUPT_RECORD_COLUMN, SourceContract
from transforms.drift import DriftReport, SchemaDriftError, detect_drift
from transforms.ingest import EXTRA_COLUMNS_COLUMN, SOURCE_FILE_COLUMN

LAYERS = ("bronze", "silver", "staging", "gold", "ops")
# (Spark application, table, location) already registered in the catalog by this process.
_REGISTERED: set[tuple[str, str, str]] = set()


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


def date_predicate(business_date: date, extra: dict[str, str] | None = None) -> str:
    """A ``replaceWhere`` predicate for one business date (and optional equality filters).

    Delta's ``replaceWhere`` takes SQL text only; every value here is a ``date`` or a name from our
    own code, formatted and quoted, never user input.
    """
    if not isinstance(business_date, date):
        raise TypeError("business_date must be a datetime.date")
    clauses = [f"business_date = DATE'{business_date.isoformat()}'"]
    for column, value in (extra or {}).items():
        if not column.isidentifier() or "'" in value:
            raise ValueError(f"unsafe predicate {column}={value!r}")
        clauses.append(f"{column} = '{value}'")
    return " AND ".join(clauses)


class LakehouseResource(ConfigurableResource):
    """Reads and writes Delta tables under ``root`` (``LAKEHOUSE_ROOT`` when empty)."""

    root: str = ""

    @property
    def base(self) -> str:
        """The lakehouse root, without a trailing slash."""
        return (self.root or lakehouse_root()).rstrip("/")

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

    def read_landing_checked(
        self, spark: SparkSession, contract: SourceContract, business_date: date
    ) -> tuple[DataFrame, DriftReport]:
        """Read a source's landed files for a date, every declared column as a string.

        The files' own columns are compared with the contract first: a missing required column or
        a retyped one raises ``SchemaDriftError`` (nothing is null-filled); columns the contract
        does not declare are kept as JSON in ``_extra_columns`` and reported. CSV/JSON lines that do
        not parse are kept whole in ``_corrupt_record``. A source that does not land daily and has
        no files for the date reads as no rows.
        """
        location = self.landing_path(contract.name, business_date)
        if not self._has_files(location):
            if contract.lands_daily:
                raise FileNotFoundError(
                    f"no {contract.name} files landed for {business_date} in {location}"
                )
            empty = spark.createDataFrame([], contract.landing_schema())
            empty = empty.withColumn(SOURCE_FILE_COLUMN, F.lit(None).cast("string"))
            return empty, detect_drift(contract, contract.landing_schema())
        observed = self._observed_schema(spark, contract, location)
        drift = detect_drift(contract, observed)
        if drift.breaking:
            raise SchemaDriftError(drift.describe())
        declared = set(contract.column_names)
        extras = [f.name for f in observed.fields if f.name not in declared]
        present = {f.name for f in observed.fields}
        if contract.file_format == "parquet":
            raw = spark.read.parquet(location).withColumn(
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
            raw = reader.load(location).withColumn(SOURCE_FILE_COLUMN, F.col("_metadata.file_path"))
        columns = [
            F.col(f"`{c}`") if c in present else F.lit(None).cast("string").alias(c)
            for c in contract.column_names
        ]
        extra = (
            F.to_json(F.struct(*[F.col(f"`{c}`") for c in extras]))
            if extras
            else F.lit(None).cast("string")
        )
        return (
            raw.select(
                *columns,
                CORRUPT_RECORD_COLUMN,
                extra.alias(EXTRA_COLUMNS_COLUMN),
                SOURCE_FILE_COLUMN,
            ),
            drift,
        )

    @staticmethod
    def _has_files(location: str) -> bool:
        if "://" in location and not location.startswith("file://"):
            return True  # object stores: let the reader fail with its own message
        folder = Path(location.removeprefix("file://"))
        return folder.is_dir() and any(
            p.is_file() and not p.name.startswith((".", "_")) for p in folder.iterdir()
        )

    @staticmethod
    def _observed_schema(
        spark: SparkSession, contract: SourceContract, location: str
    ) -> StructType:
        """The columns (and, for typed formats, types) the landed files actually carry."""
        if contract.file_format == "parquet":
            return spark.read.parquet(location).schema
        if contract.file_format == "jsonl":
            return spark.read.option("samplingRatio", "1.0").json(location).schema
        header = spark.read.option("header", "true").csv(location).schema
        return StructType([StructField(f.name, StringType(), True) for f in header.fields])

    def last_commit_metrics(self, spark: SparkSession, table: TableRef) -> dict[str, str]:
        """Delta's operation metrics of the table's latest commit (rows written, files...)."""
        history = DeltaTable.forPath(spark, self.path(table)).history(1)
        return dict(history.select("operationMetrics").first()[0] or {})

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
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {table.layer}")
        _REGISTERED.difference_update({k for k in _REGISTERED if k[1] == table.qualified})
        if spark.catalog.tableExists(table.qualified):
            current = spark.sql(f"DESCRIBE DETAIL {table.qualified}").select("location").first()[0]
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
        predicate = date_predicate(business_date, extra_predicate)
        path = self.path(table)
        if not DeltaTable.isDeltaTable(df.sparkSession, path):
            # Delta checks rows against replaceWhere only when the table exists: create it empty
            # first, so even the first write refuses a row of another date.
            df.limit(0).write.format("delta").partitionBy("business_date").save(path)
        (
            df.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", predicate)
            # Additive schema changes (a new nullable column) evolve the table; a changed type
            # still fails the write.
            .option("mergeSchema", "true")
            .partitionBy("business_date")
            .save(path)
        )
        self.register(df.sparkSession, table)
        return self.version(df.sparkSession, table)

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

    def version(self, spark: SparkSession, table: TableRef) -> int:
        """The table's current Delta version."""
        history = DeltaTable.forPath(spark, self.path(table)).history(1)
        return int(history.select("version").first()[0])
