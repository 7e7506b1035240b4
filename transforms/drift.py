"""Schema drift: how a landed file's columns and types differ from its declared contract.

Names are compared exactly. A missing declared column and an added file column that look alike
(same name once case, spaces, underscores and hyphens are ignored, or close by ``difflib``) are
reported as a likely rename, and still count as missing and added.
"""

import difflib
import re
from dataclasses import dataclass

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DataType,
    DateType,
    MapType,
    NumericType,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from transforms.contracts import CORRUPT_RECORD_COLUMN, SourceContract
from transforms.ingest import SOURCE_FILE_COLUMN

# Columns the readers add themselves: never drift.
IGNORED_COLUMNS = frozenset([CORRUPT_RECORD_COLUMN, SOURCE_FILE_COLUMN])
# How alike two normalised names must be (difflib ratio) to be reported as a likely rename.
RENAME_SIMILARITY = 0.75

_NUMERIC_SILVER = re.compile(r"^(decimal|numeric|int|integer|bigint|long|smallint|tinyint)\b")


class SchemaDriftError(ValueError):
    """A landed file does not have the columns or types its contract or mapping declares."""


@dataclass(frozen=True)
class DriftReport:
    """The differences between a contract and the schema observed in a file.

    ``missing_required`` (the required columns among ``missing``) is filled by ``detect_drift``
    and decides ``breaking``.
    """

    source: str
    missing: tuple[str, ...]
    added: tuple[str, ...]
    retyped: tuple[tuple[str, str, str], ...]
    renamed: tuple[tuple[str, str], ...]
    missing_required: tuple[str, ...] = ()

    @property
    def has_drift(self) -> bool:
        """Whether the file differs from the contract at all."""
        return bool(self.missing or self.added or self.retyped)

    @property
    def breaking(self) -> bool:
        """Whether silver cannot load the file as declared: a required column gone, or retyped."""
        return bool(self.missing_required or self.retyped)

    def describe(self) -> str:
        """One sentence listing every difference, for error messages and run metadata."""
        if not self.has_drift:
            return f"{self.source}: no schema drift."
        optional = [c for c in self.missing if c not in self.missing_required]
        parts = []
        if self.missing_required:
            parts.append(f"missing required column(s) {_names(self.missing_required)}")
        if optional:
            parts.append(f"missing optional column(s) {_names(optional)}")
        if self.added:
            parts.append(f"added column(s) {_names(self.added)}")
        if self.renamed:
            pairs = ", ".join(f"{d!r} -> {o!r}" for d, o in self.renamed)
            parts.append(f"likely renamed {pairs}")
        if self.retyped:
            changes = ", ".join(f"{c!r} (declared {d}, observed {o})" for c, d, o in self.retyped)
            parts.append(f"retyped {changes}")
        kind = "breaking" if self.breaking else "non-breaking"
        return f"{self.source}: {kind} schema drift: {'; '.join(parts)}."

    def as_metadata(self) -> dict:
        """A JSON-able summary (for Dagster metadata and the ops tables)."""
        return {
            "source": self.source,
            "has_drift": self.has_drift,
            "breaking": self.breaking,
            "missing": list(self.missing),
            "missing_required": list(self.missing_required),
            "added": list(self.added),
            "retyped": [{"column": c, "declared": d, "observed": o} for c, d, o in self.retyped],
            "renamed": [{"declared": d, "observed": o} for d, o in self.renamed],
            "description": self.describe(),
        }


def _names(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(repr(n) for n in names)


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def _is_complex(observed: DataType) -> bool:
    return isinstance(observed, (StructType, ArrayType, MapType, BinaryType))


def _is_retyped(silver_type: str, observed: DataType) -> bool:
    """Whether ``observed`` cannot hold values of the declared silver type faithfully.

    Strings (and anything of an unlisted pairing) are accepted: silver casts and quarantines.
    """
    declared = silver_type.strip().lower()
    is_numeric = bool(_NUMERIC_SILVER.match(declared))
    is_date = declared == "date"
    is_timestamp = declared.startswith("timestamp")
    strong = is_numeric or is_date or is_timestamp
    return (
        (strong and (_is_complex(observed) or isinstance(observed, BooleanType)))
        or (is_date and isinstance(observed, NumericType))
        or (is_numeric and isinstance(observed, (DateType, TimestampType, TimestampNTZType)))
        or (declared == "string" and _is_complex(observed))
    )


def _likely_renames(missing: list[str], added: list[str]) -> tuple[tuple[str, str], ...]:
    """Pair missing declared names with added file names, one to one, most alike first."""
    candidates = []
    for d in missing:
        for o in added:
            nd, no = _normalise(d), _normalise(o)
            score = 1.0 if nd == no else difflib.SequenceMatcher(None, nd, no).ratio()
            if score >= RENAME_SIMILARITY:
                candidates.append((-score, missing.index(d), added.index(o), d, o))
    used_d: set[str] = set()
    used_o: set[str] = set()
    pairs = []
    for _, _, _, d, o in sorted(candidates):
        if d not in used_d and o not in used_o:
            used_d.add(d)
            used_o.add(o)
            pairs.append((d, o))
    order = {d: i for i, d in enumerate(missing)}
    return tuple(sorted(pairs, key=lambda p: order[p[0]]))


def detect_drift(contract: SourceContract, observed: StructType) -> DriftReport:
    """Compare the schema read from a file with the contract it should follow."""
    fields = [f for f in observed.fields if f.name not in IGNORED_COLUMNS]
    observed_names = [f.name for f in fields]
    declared = contract.column_names
    missing = [c for c in declared if c not in observed_names]
    gone = set(missing)
    added = [n for n in observed_names if n not in declared]
    by_name = {f.name: f.dataType for f in fields}
    retyped = tuple(
        (c.name, c.silver_type, by_name[c.name].simpleString())
        for c in contract.columns
        if c.name in by_name and _is_retyped(c.silver_type, by_name[c.name])
    )
    return DriftReport(
        source=contract.name,
        missing=tuple(missing),
        added=tuple(added),
        retyped=retyped,
        renamed=_likely_renames(missing, added),
        missing_required=tuple(c.name for c in contract.columns if c.required and c.name in gone),
    )
