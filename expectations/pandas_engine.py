"""When a suite may run on GX's pandas engine instead of its Spark engine, and the frame it gets.

GX's Spark engine costs a validation dozens of small Spark jobs and thousands of py4j calls, seconds
of JVM time for a few hundred rows. A small frame is collected once (``toPandas``: one Spark job)
and the very same suite runs on GX's pandas engine, which must give the very same report. The two
engines differ in places; each difference is handled here, or the frame stays on Spark:

- nulls: ``toPandas`` turns a null integer into NaN (the column becomes float): such columns are
  turned back into Python ints and None. A real NaN in a Spark float column is a value (not null) to
  Spark and a null to pandas: a frame with one in a checked column stays on Spark.
- decimals: Spark compares a decimal with a float bound as a double; pandas would compare the
  ``Decimal`` exactly (``Decimal("0.01") < 0.01``). A decimal column a range rule checks becomes
  float64 (Spark's comparison), and its offending values are written back at the column's scale,
  which is exact only when every value survives the round trip through a double: if one does not,
  the frame stays on Spark.
- ``FloatType``: Spark hands Python the float32 value widened to a double; pandas keeps float32
  (another ``str``): widened to float64 as Spark does.
- regular expressions: Java's ``rlike`` and Python's ``re`` agree on the project's patterns
  (``expectations/pii.py``: classes, ``\\b``, ``\\d``, back-references) for ASCII text; Python's
  ``\\d``, ``\\w`` and ``\\b`` also take non-ASCII digits and letters, Java's ``\\d`` does not: a
  regex-checked column holding non-ASCII text stays on Spark.
- a null is None on Spark, NaN or NaT on pandas: an offending null is reported as None.
- timestamps (``toPandas`` converts them in the session's time zone, ``collect`` in Python's) stay
  on Spark but where no value is reported (a rule that they are not null); arrays, maps and
  structs, and a range rule with non-numeric bounds stay on Spark; so do
  expectation types not listed below and rules with a ``row_condition`` (its syntax is the
  engine's).

``tests/expectations/test_engine_equivalence.py`` runs the project's suites on both engines.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from expectations.gx import gx_engine_util, gxe
from expectations.suite import Rule

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_FLOATING = (T.FloatType, T.DoubleType)
_NUMERIC = (*_INTEGRAL, *_FLOATING, T.DecimalType)
# Column types, grouped for the expectations that may check them on pandas (``_types``).
_DISCRETE = (T.StringType, *_INTEGRAL, T.BooleanType)
_ATOMIC = (*_DISCRETE, *_FLOATING, T.DecimalType, T.DateType)


@cache
def _types() -> dict[type, tuple[type, ...]]:
    """The column types each expectation type may check on pandas (anything else: Spark)."""
    return {
        gxe.ExpectColumnValuesToBeInSet: _DISCRETE,
        gxe.ExpectColumnValuesToNotBeInSet: _DISCRETE,
        gxe.ExpectColumnKLDivergenceToBeLessThan: _DISCRETE,
        gxe.ExpectColumnValuesToBeBetween: _NUMERIC,
        # Its offending values are nulls: a timestamp's value is never reported.
        gxe.ExpectColumnValuesToNotBeNull: (*_ATOMIC, T.TimestampType, T.TimestampNTZType),
        gxe.ExpectColumnValuesToBeNull: _ATOMIC,
        gxe.ExpectColumnValuesToBeUnique: _ATOMIC,
        gxe.ExpectCompoundColumnsToBeUnique: _ATOMIC,
        gxe.ExpectColumnValuesToNotMatchRegexList: (T.StringType,),
        gxe.ExpectColumnValueLengthsToBeBetween: (T.StringType,),
    }


# Key columns are reported as they are (``_plain``): types whose pandas value reads the same.
_KEY_TYPES = (T.StringType, *_INTEGRAL, T.BooleanType, T.DateType, T.DecimalType, *_FLOATING)
_NAN = "__gx_nan__"


def rule_columns(rule: Rule) -> list[str]:
    """The columns ``rule`` checks."""
    expectation = rule.expectation
    if isinstance(expectation, gxe.ExpectCompoundColumnsToBeUnique):
        return list(expectation.column_list)
    return [expectation.column]


def _numeric(bound) -> bool:
    return bound is None or (isinstance(bound, int | float) and not isinstance(bound, bool))


def rule_on_pandas(rule: Rule) -> bool:
    """Whether GX's pandas engine judges ``rule`` as its Spark engine does, whatever the data."""
    expectation = rule.expectation
    if type(expectation) not in _types() or getattr(expectation, "row_condition", None):
        return False
    if isinstance(expectation, gxe.ExpectColumnValuesToBeBetween):
        return _numeric(expectation.min_value) and _numeric(expectation.max_value)
    if isinstance(expectation, gxe.ExpectColumnKLDivergenceToBeLessThan):
        partition = expectation.partition_object
        return bool(gx_engine_util.is_valid_categorical_partition_object(partition))
    return True


@dataclass
class PandasFrame:
    """A frame collected for GX's pandas engine, or why it stays on Spark."""

    frame: pd.DataFrame | None
    rows: int
    # Why the frame stays on Spark (None: it does not).
    spark_because: str | None = None
    # Decimal columns validated as doubles: their scale, to write offending values back.
    decimal_scales: dict[str, int] = field(default_factory=dict)

    def sample_value(self, rule: Rule, value):
        """An offending value of ``rule`` as the Spark engine reports it."""
        columns = rule_columns(rule)
        return self.value(columns[0] if len(columns) == 1 else None, value)

    def value(self, column: str | None, value):
        """A value of ``column`` as Spark collects it: a null is None, a decimal a ``Decimal``."""
        if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
            return None
        if column in self.decimal_scales:
            return Decimal(repr(float(value))).quantize(
                Decimal(1).scaleb(-self.decimal_scales[column])
            )
        return value


def collect(
    df: DataFrame, rules: Iterable[Rule], key: Iterable[str], bound: int
) -> PandasFrame | None:
    """``df`` (its key and checked columns) as pandas, when ``rules`` may run on pandas.

    None when a rule or a column's type must stay on Spark (no Spark job ran); otherwise a frame
    whose ``frame`` is None, with ``spark_because`` said, when the data must: more rows than
    ``bound``, a NaN, a non-ASCII value under a regex, a decimal a double cannot hold.
    """
    rules = list(rules)
    if bound <= 0 or not all(rule_on_pandas(r) for r in rules):
        return None
    types = {f.name: f.dataType for f in df.schema.fields}
    columns = list(dict.fromkeys([*key, *(c for r in rules for c in rule_columns(r))]))
    if any(c not in types for c in columns):
        return None
    if any(not isinstance(types[c], _KEY_TYPES) for c in key):
        return None
    for rule in rules:
        allowed = _types()[type(rule.expectation)]
        if any(not isinstance(types[c], allowed) for c in rule_columns(rule)):
            return None
    floating = [c for c in columns if isinstance(types[c], _FLOATING)]
    nan = (
        [F.exists(F.array(*(F.isnan(c) for c in floating)), lambda x: x).alias(_NAN)]
        if floating
        else []
    )
    # One Spark job: at most one row more than the bound says the frame is over it.
    frame = df.select(*columns, *nan).limit(bound + 1).toPandas()
    rows = len(frame)
    if rows > bound:
        return PandasFrame(None, rows, f"more than {bound} rows")
    if floating:
        if frame[_NAN].fillna(False).astype(bool).any():
            return PandasFrame(None, rows, "a NaN in a checked float column")
        frame = frame.drop(columns=[_NAN])
    regex_columns = {
        c
        for r in rules
        if isinstance(r.expectation, gxe.ExpectColumnValuesToNotMatchRegexList)
        for c in rule_columns(r)
    }
    for column in regex_columns:
        if not frame[column].dropna().map(str.isascii).all():
            return PandasFrame(None, rows, f"non-ASCII text in {column}, checked by a regex")
    between = {
        c
        for r in rules
        if isinstance(r.expectation, gxe.ExpectColumnValuesToBeBetween)
        for c in rule_columns(r)
    }
    scales = {}
    for column in columns:
        kind = types[column]
        if isinstance(kind, _INTEGRAL) and frame[column].dtype.kind == "f":
            # Nulls made the column float: back to Python ints and None, as Spark collects it.
            frame[column] = pd.Series(
                [None if pd.isna(v) else int(v) for v in frame[column]],
                index=frame.index,
                dtype=object,
            )
        elif isinstance(kind, T.FloatType):
            frame[column] = frame[column].astype("float64")
        elif isinstance(kind, T.DecimalType) and column in between:
            if column in key:
                return PandasFrame(None, rows, f"decimal key {column} checked by a range")
            values = frame[column].dropna()
            if not all(Decimal(repr(float(v))) == v for v in values):
                return PandasFrame(None, rows, f"a decimal in {column} a double cannot hold")
            frame[column] = frame[column].astype("float64")
            scales[column] = kind.scale
    return PandasFrame(frame, rows, decimal_scales=scales)
