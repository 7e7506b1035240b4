"""Declared mappings that land a foreign export as one of our contracts, without new pipeline code.

A mapping says, for each contract column, which source column feeds it (or alternatives, the first
present wins, for columns renamed between monthly files), or which Spark SQL expression computes
it. The result has exactly the contract's landing shape (all strings), so bronze and silver treat
it like any landed file: what does not parse is quarantined there, with a reason.
"""

from dataclasses import dataclass, field

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from transforms.contracts import CORRUPT_RECORD_COLUMN, FILE_FORMATS, SourceContract
from transforms.drift import SchemaDriftError
from transforms.ingest import SOURCE_FILE_COLUMN, row_hash

# Hex characters of the SHA-256 kept in a surrogate key (before the occurrence number).
SURROGATE_HASH_CHARS = 16
CSV_DEFAULT_OPTIONS = {"header": "true", "mode": "PERMISSIVE", "escape": '"'}


@dataclass(frozen=True)
class SourceMapping:
    """How a foreign export lands as ``contract``.

    ``columns`` maps a contract column to a source column or to alternatives (first present wins).
    ``expressions`` maps a contract column to a Spark SQL expression over source columns (window
    functions allowed). ``surrogate_key`` names source columns whose hash, plus an occurrence
    number among identical rows, becomes the contract's (single-column) key. ``options`` are
    reader options (CSV: header, quoting... on top of ``CSV_DEFAULT_OPTIONS``).
    """

    name: str
    contract: SourceContract
    file_format: str
    columns: dict[str, str | tuple[str, ...]]
    expressions: dict[str, str] = field(default_factory=dict)
    surrogate_key: tuple[str, ...] | None = None
    options: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if self.file_format not in FILE_FORMATS:
            raise ValueError(f"{self.name}: file_format must be one of {FILE_FORMATS}")
        declared = set(self.contract.column_names)
        targets = [*self.columns, *self.expressions]
        if self.surrogate_key is not None:
            if len(self.contract.key) != 1:
                raise ValueError(f"{self.name}: a surrogate key needs a single-column key")
            if not self.surrogate_key:
                raise ValueError(f"{self.name}: surrogate_key names no source column")
            targets.append(self.contract.key[0])
        unknown = sorted(set(targets) - declared)
        if unknown:
            raise ValueError(f"{self.name}: {self.contract.name} declares no column {unknown}")
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"{self.name}: columns mapped more than once: {twice}")

    @property
    def surrogate_column(self) -> str | None:
        """The contract column the surrogate key fills, if any."""
        return self.contract.key[0] if self.surrogate_key is not None else None


def unmapped_columns(mapping: SourceMapping) -> list[str]:
    """Contract columns the mapping leaves null (neither mapped, computed nor a surrogate key)."""
    fed = {*mapping.columns, *mapping.expressions, mapping.surrogate_column}
    return [c for c in mapping.contract.column_names if c not in fed]


def _alternatives(source: str | tuple[str, ...]) -> tuple[str, ...]:
    return (source,) if isinstance(source, str) else tuple(source)


def _resolve_columns(raw: DataFrame, mapping: SourceMapping) -> dict[str, str]:
    """Contract column -> the source column present in ``raw``; drift raises, listing all."""
    present = raw.columns
    resolved: dict[str, str] = {}
    problems = []
    for target, source in mapping.columns.items():
        options = _alternatives(source)
        found = next((s for s in options if s in present), None)
        if found is None:
            problems.append(f"{target} <- {' | '.join(repr(s) for s in options)}")
        else:
            resolved[target] = found
    for s in mapping.surrogate_key or ():
        if s not in present:
            problems.append(f"{mapping.surrogate_column} (surrogate key) <- {s!r}")
    if problems:
        raise SchemaDriftError(
            f"{mapping.name}: source column(s) not found in the file: {'; '.join(problems)}. "
            f"File columns: {', '.join(repr(c) for c in present)}."
        )
    return resolved


def _surrogate_key(columns: tuple[str, ...], all_columns: list[str]) -> Column:
    """``<hash prefix>-<n>``: the hash of the columns, numbered among rows sharing the prefix.

    Rows are numbered in the order of their full hash, then of the hash of all their columns, so
    the number is deterministic, and the key unique even if two different rows shared a prefix.
    """
    full = row_hash(list(columns))
    prefix = F.substring(full, 1, SURROGATE_HASH_CHARS)
    window = Window.partitionBy(prefix).orderBy(full, row_hash(all_columns))
    return F.concat_ws("-", prefix, F.row_number().over(window).cast("string"))


def _expression_error(raw: DataFrame, mapping: SourceMapping) -> SchemaDriftError | None:
    """The drift error naming the first declared expression that does not resolve, if any."""
    for target, expression in mapping.expressions.items():
        try:
            raw.select(F.expr(expression))
        except AnalysisException as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return SchemaDriftError(
                f"{mapping.name}: the expression for {target} does not resolve against the file "
                f"({expression}): {detail}"
            )
    return None


def _nullable_string(value: Column) -> Column:
    """``value`` as a nullable string, as the landing schema declares every column."""
    text = value.cast("string")
    return F.when(text.isNotNull(), text)


def apply_mapping(raw: DataFrame, mapping: SourceMapping) -> DataFrame:
    """Rows of a foreign export in the contract's landing shape: every column a string, in order,
    then ``_corrupt_record`` and ``_source_file`` (null when ``raw`` has none)."""
    resolved = _resolve_columns(raw, mapping)
    outputs: list[Column] = []
    for target in mapping.contract.column_names:
        if target in resolved:
            value = F.col(f"`{resolved[target]}`")
        elif target in mapping.expressions:
            value = F.expr(mapping.expressions[target])
        elif target == mapping.surrogate_column:
            value = _surrogate_key(mapping.surrogate_key or (), raw.columns)
        else:
            value = F.lit(None)
        outputs.append(_nullable_string(value).alias(target))
    for extra in (CORRUPT_RECORD_COLUMN, SOURCE_FILE_COLUMN):
        value = F.col(extra) if extra in raw.columns else F.lit(None)
        outputs.append(_nullable_string(value).alias(extra))
    try:
        return raw.select(*outputs)
    except AnalysisException as exc:
        drift = _expression_error(raw, mapping)
        if drift is not None:
            raise drift from exc
        raise


def read_mapped(spark: SparkSession, mapping: SourceMapping, path: str) -> DataFrame:
    """Read a foreign export (file or folder) and land it in the mapping's contract shape.

    CSV is read all-string (no schema inference); ``_source_file`` is the file's path.
    """
    if mapping.file_format == "csv":
        reader = spark.read.format("csv").options(**{**CSV_DEFAULT_OPTIONS, **mapping.options})
    elif mapping.file_format == "jsonl":
        reader = spark.read.format("json").options(**mapping.options)
    else:
        reader = spark.read.format("parquet").options(**mapping.options)
    raw = reader.load(path).withColumn(SOURCE_FILE_COLUMN, F.col("_metadata.file_path"))
    return apply_mapping(raw, mapping)
