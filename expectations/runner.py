"""Run a suite with Great Expectations on a Spark DataFrame, in as few Spark passes as it can.

GX computes a rule's counts as aggregates it bundles into one Spark job per column, but every
offending-row detail (a sample of values, the rows' keys) costs it one more job per rule, whether
or not the rule found anything. So a suite runs in two passes:

1. every rule with counts only (``SUMMARY`` without partial lists): the verdicts, row and
   unexpected counts and observed values, in a few bundled jobs;
2. only when some rule failed on offending rows: those rules again with a sample of their
   offending values and the keys of up to ``MAX_OFFENDING_KEYS`` offending rows.

A partition that passes, the common case, pays for the first pass alone.

A small frame (at most ``GX_PANDAS_MAX_ROWS`` rows, ``infra/settings.py``) is collected to pandas
once, in one Spark job, and the same passes run on GX's pandas engine instead of its Spark engine
(dozens of Spark jobs and thousands of py4j calls a validation); a suite or a frame the two engines
would judge differently stays on Spark (``expectations/pandas_engine.py``). The report says which
engine validated (``engine``).

A run's dates (``validate_dates``) are validated together, in passes whose number does not grow
with the number of dates; each date gets the report ``validate`` gives it alone.
"""

import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from expectations import pandas_engine
from expectations.docs_views import view_config
from expectations.gx import gx, gx_config, gx_engine_util, gx_expectation, gxe
from expectations.pandas_engine import PandasFrame
from expectations.suite import ERROR, Rule, Suite
from infra.settings import gx_pandas_max_rows

if TYPE_CHECKING:  # imported where it is used (expectations/gx.py)
    from great_expectations.expectations.expectation import Expectation

# Offending keys kept per failed rule (the count is always exact).
MAX_OFFENDING_KEYS = 1000
# Offending values sampled per failed rule.
SAMPLE_VALUES = 10
DOCS_SITE = "lakehouse"
COUNTS_ONLY = {"result_format": "SUMMARY", "partial_unexpected_count": 0}


@dataclass
class RuleResult:
    """The verdict on one rule, with a sample of offending values."""

    name: str
    severity: str
    description: str
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    sample: list[Any] = field(default_factory=list)
    offending_keys: list[dict[str, Any]] = field(default_factory=list)
    observed_value: Any = None


@dataclass
class ValidationReport:
    """The verdict on a whole suite."""

    suite: str
    rows: int
    results: list[RuleResult]
    docs_url: str | None = None
    # Data Docs of the second pass (the failed rules' offending values), when it ran.
    failures_docs_url: str | None = None
    # GX validations run: 1 when every rule passed, 2 when offending rows were looked up.
    passes: int = 0
    # GX's engine that validated: "pandas" (a small frame collected once) or "spark"; over several
    # dates, a date validated by both is "pandas+spark"; None when GX did not run (no rows).
    engine: str | None = None

    @property
    def blocking_failures(self) -> list[RuleResult]:
        """Failed rules whose severity blocks the publish."""
        return [r for r in self.results if not r.success and r.severity == ERROR]

    @property
    def passed(self) -> bool:
        """True when no blocking rule failed."""
        return not self.blocking_failures


def _vacuous(suite: Suite) -> ValidationReport:
    """Every rule is a statement about rows: over no rows each holds.

    Running GX to say so costs seconds per table (payroll on a non-pay day, a weekend's bank
    statement).
    """
    return ValidationReport(
        suite=suite.name,
        rows=0,
        results=[
            RuleResult(
                name=rule.name,
                severity=rule.severity,
                description=rule.description,
                success=True,
                element_count=0,
                unexpected_count=0,
                observed_value="no rows to check",
            )
            for rule in suite.rules
        ],
    )


_GX_LOCK = threading.Lock()
# What pandas says of every pattern with a group (the card pattern's back-references) that GX's
# pandas engine tests with ``str.contains``: a match is all the rule asks for.
_GROUPS_WARNING = "This pattern is interpreted as a regular expression, and has match groups"


def _context(docs_dir: str | None):
    # In memory, without the temporary docs site GX's default ephemeral context makes (and never
    # removes) under /tmp for every validation.
    config = gx_config.DataContextConfig(
        store_backend_defaults=gx_config.InMemoryStoreBackendDefaults()
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = gx_config.ProgressBarsConfig(globally=False)
    if docs_dir:
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": docs_dir,
                },
                # GX's own views, their templates compiled once per process (docs_views).
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "view": view_config("DefaultJinjaIndexPageView"),
                },
                "site_section_builders": {
                    section: {"view": view_config("DefaultJinjaPageView")}
                    for section in ("expectations", "validations", "profiling")
                },
            },
        )
    return context


def _run_pass(
    context,
    df: "DataFrame | pd.DataFrame",
    name: str,
    rules: list[Rule],
    result_format: dict,
    docs: bool,
) -> tuple[list, str | None]:
    """One GX validation of ``rules`` on ``df``: its expectation results and Data Docs page.

    A pandas frame is validated by GX's pandas engine, a Spark frame by its Spark engine."""
    if isinstance(df, pd.DataFrame):
        source = context.data_sources.add_pandas(name=f"{name}_source")
    else:
        # The caller persists the frame once for both passes (and unpersists it after).
        source = context.data_sources.add_spark(name=f"{name}_source", persist=False)
    asset = source.add_dataframe_asset(name=name)
    batch_definition = asset.add_batch_definition_whole_dataframe(f"{name}_batch")
    gx_suite = context.suites.add(gx.ExpectationSuite(name=name))
    for rule in rules:
        # A copy: an expectation belongs to one GX suite, and a rule may be validated again.
        gx_suite.add_expectation(
            rule.expectation.copy(update={"id": None, "meta": {"rule": rule.name}})
        )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_definition, suite=gx_suite)
    )
    actions = (
        [gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=[DOCS_SITE])] if docs else []
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=actions,
            result_format=result_format,
        )
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_GROUPS_WARNING)
        run = checkpoint.run(batch_parameters={"dataframe": df})
    [(identifier, outcome)] = list(run.run_results.items())
    url = None
    if docs:
        urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
        url = urls[0]["site_url"] if urls else None
    return list(outcome.results), url


def validate(df: DataFrame, suite: Suite, docs_dir: str | None = None) -> ValidationReport:
    """Validate ``df`` against ``suite`` with GX; report every rule's verdict.

    Offending rows are identified (values sampled, keys kept) for the rules that failed on them.
    With ``docs_dir``, GX Data Docs (HTML) are written there and the pages' addresses are in the
    report.
    """
    if suite.prepare is not None:
        df = suite.prepare(df)
    small = _small(df, suite)
    if small is not None:
        if not small.rows:
            return _vacuous(suite)
        if small.frame is not None:
            with _GX_LOCK:
                return _validate(small.frame, suite, docs_dir, small)
        # Too large, or data pandas would judge otherwise: Spark (known not to be empty).
    elif df.isEmpty():
        return _vacuous(suite)
    # Read once, validated from memory by every GX job of both passes, released afterwards (GX's
    # own persist is never released).
    df = df.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        # GX keeps its current context in a global: one validation at a time in this process
        # (steps may run at once in threads, infra/executor.py).
        with _GX_LOCK:
            return _validate(df, suite, docs_dir)
    finally:
        df.unpersist()


def _small(prepared: DataFrame, suite: Suite) -> PandasFrame | None:
    """The ``prepared`` frame collected for GX's pandas engine (``pandas_engine.collect``); None
    when the suite stays on Spark whatever the data."""
    bound = gx_pandas_max_rows()
    if bound <= 0 or not all(pandas_engine.rule_on_pandas(r) for r in suite.rules):
        return None
    return pandas_engine.collect(prepared, suite.rules, suite.key, bound)


def _validate(
    df: "DataFrame | pd.DataFrame",
    suite: Suite,
    docs_dir: str | None,
    small: PandasFrame | None = None,
) -> ValidationReport:
    context = _context(docs_dir)
    counted, docs_url = _run_pass(
        context, df, suite.name, list(suite.rules), COUNTS_ONLY, bool(docs_dir)
    )
    results = {}
    rows = None
    for item in counted:
        rule = suite.rule(item.expectation_config.meta["rule"])
        detail = item.result or {}
        rows = detail.get("element_count", rows)
        results[rule.name] = RuleResult(
            name=rule.name,
            severity=rule.severity,
            description=rule.description,
            success=bool(item.success),
            element_count=detail.get("element_count"),
            unexpected_count=detail.get("unexpected_count"),
            observed_value=_plain(detail.get("observed_value")),
        )
    report = ValidationReport(
        suite=suite.name,
        rows=rows or 0,
        # In the suite's order (GX returns them grouped its own way).
        results=[results[rule.name] for rule in suite.rules if rule.name in results],
        docs_url=docs_url,
        passes=1,
        engine="spark" if small is None else "pandas",
    )
    # Row-level rules that failed on offending rows: look those rows up, and nothing else.
    to_explain = [
        suite.rule(r.name) for r in report.results if not r.success and (r.unexpected_count or 0)
    ]
    if not to_explain:
        return report
    explained, report.failures_docs_url = _run_pass(
        context,
        df,
        f"{suite.name}_failures",
        to_explain,
        {
            # SUMMARY, not COMPLETE: COMPLETE collects every offending row to the driver, which
            # a bad partition of millions of rows does not survive; SUMMARY stops at the bound.
            "result_format": "SUMMARY",
            # GX returns the offending rows' key columns for row-level rules.
            "unexpected_index_column_names": list(suite.key),
            "return_unexpected_index_query": False,
            "partial_unexpected_count": MAX_OFFENDING_KEYS,
        },
        bool(docs_dir),
    )
    report.passes = 2
    for item in explained:
        result = results[item.expectation_config.meta["rule"]]
        detail = item.result or {}
        rule = suite.rule(result.name)
        result.sample = [
            str(v if small is None else small.sample_value(rule, v))
            for v in (detail.get("partial_unexpected_list") or [])[:SAMPLE_VALUES]
        ]
        result.offending_keys = [
            {k: _plain(row.get(k)) for k in suite.key}
            for row in (detail.get("partial_unexpected_index_list") or [])[:MAX_OFFENDING_KEYS]
            if isinstance(row, dict)
        ]
    return report


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a value GX returns (numpy scalars, dates)."""
    if hasattr(value, "item"):  # numpy scalars (a numpy float is a float too)
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# --- Several dates at once ---
#
# A run over N dates validates every date with, per table: one GX pass over all the dates (the
# rules whose configuration is the same on every date and that are row-level), one Spark
# aggregation grouped by date (the aggregate rules GX can judge from per-date counts: ``mostly``
# shares, label distributions) whose verdicts GX's own expectation code gives from each date's
# counts, and, only when something failed, one GX pass that names the offending rows of every date
# at once. None of these grows with N. Per-date GX passes remain only for a rule whose
# configuration differs between the dates and that has no per-date-count form, and for a failed
# rule with more offending rows over the run than one lookup brings back
# (``MAX_OFFENDING_KEYS`` a date on average).

_DATE = "business_date"


@cache
def _countable_maps() -> tuple[type, ...]:
    return (
        gxe.ExpectColumnValuesToBeInSet,
        gxe.ExpectColumnValuesToNotBeInSet,
        gxe.ExpectColumnValuesToBeNull,
    )


def _range_safe(rule: Rule) -> Rule | None:
    """``rule`` in a form that holds over several dates iff it holds on each; None if it can't.

    Row-level rules (every value null-free, in a set, in range...) hold over a union of dates
    exactly when they hold on each date. Uniqueness is per date, so ``business_date`` joins the
    key. Rules on aggregates (``mostly`` shares, distributions) do not add up: see ``_countable``.
    """
    expectation = rule.expectation
    if getattr(expectation, "row_condition", None):
        return None
    if isinstance(expectation, gxe.ExpectColumnValuesToBeUnique):
        expectation = gxe.ExpectCompoundColumnsToBeUnique(column_list=[expectation.column, _DATE])
    elif isinstance(expectation, gxe.ExpectCompoundColumnsToBeUnique):
        expectation = expectation.copy(update={"column_list": [*expectation.column_list, _DATE]})
    elif not isinstance(
        expectation, gx_expectation.ColumnMapExpectation | gx_expectation.MulticolumnMapExpectation
    ):
        return None
    if (getattr(expectation, "mostly", 1) or 1) < 1:
        return None
    return Rule(rule.name, rule.severity, rule.description, expectation)


def _countable(rule: Rule) -> bool:
    """Whether GX can judge ``rule`` on each date from counts one grouped aggregation gives.

    A ``mostly`` share of set membership or nulls needs a date's rows, null values and unexpected
    values; a categorical KL divergence needs the date's count of each value. GX computes the rest
    (the share, the divergence, the verdict) with the expectation's own code.
    """
    expectation = rule.expectation
    if getattr(expectation, "row_condition", None):
        return False
    if isinstance(expectation, _countable_maps()):
        return True
    return isinstance(expectation, gxe.ExpectColumnKLDivergenceToBeLessThan) and bool(
        gx_engine_util.is_valid_categorical_partition_object(expectation.partition_object)
    )


def _same_rule(rules: list[Rule]) -> bool:
    """Whether a rule is configured alike on every date (it does not depend on the date)."""
    configs = {repr(r.expectation.configuration.to_json_dict()["kwargs"]) for r in rules}
    return len(configs) == 1


def _same_domain(rules: list[Rule]) -> bool:
    """Whether a countable rule counts the same values on every date (its thresholds may differ:
    each date's verdict is its own expectation's)."""
    domains = set()
    for rule in rules:
        kwargs = rule.expectation.configuration.to_json_dict()["kwargs"]
        domains.add(repr({k: v for k, v in kwargs.items() if k in ("column", "value_set")}))
    return len(domains) == 1 and all(
        type(r.expectation) is type(rules[0].expectation) for r in rules
    )


@dataclass(frozen=True)
class DatePlan:
    """How a run's rules are validated: once over every date, counted per date, or date by date."""

    ranged: tuple[Rule, ...]  # row-level, alike on every date: one GX pass over all dates
    counted: tuple[str, ...]  # aggregates judged from per-date counts in one Spark aggregation
    per_date: tuple[str, ...]  # the rest: one GX pass per date


def plan_dates(suites: dict[date, Suite]) -> DatePlan:
    """Sort the rules of ``suites`` (one a date) by how they can be validated together."""
    ranged: list[Rule] = []
    counted: list[str] = []
    per_date: list[str] = []
    names = list(dict.fromkeys(rule.name for suite in suites.values() for rule in suite.rules))
    for name in names:
        same = [r for suite in suites.values() for r in suite.rules if r.name == name]
        if len(same) < len(suites):  # a rule some dates do not have (no drift reference yet)
            per_date.append(name)
            continue
        ranged_form = _range_safe(same[0]) if _same_rule(same) else None
        if ranged_form is not None:
            ranged.append(ranged_form)
        elif all(_countable(r) for r in same) and _same_domain(same):
            counted.append(name)
        else:
            per_date.append(name)
    return DatePlan(tuple(ranged), tuple(counted), tuple(per_date))


def _map_counts(expectation: "Expectation") -> tuple[Column, Column]:
    """(null, unexpected) conditions of a countable map rule, as GX's Spark metrics define them:
    a null is never unexpected, except for ``ExpectColumnValuesToBeNull``, which counts every
    row."""
    column = F.col(expectation.column)
    if isinstance(expectation, gxe.ExpectColumnValuesToBeNull):
        return column.isNull(), column.isNotNull()
    if expectation.value_set is None:  # GX: vacuously in the set
        return column.isNull(), F.lit(False)
    member = column.isin(list(expectation.value_set))
    unexpected = ~member if isinstance(expectation, gxe.ExpectColumnValuesToBeInSet) else member
    return column.isNull(), column.isNotNull() & unexpected


def _count_per_date(
    df: DataFrame, suites: dict[date, Suite], names: tuple[str, ...]
) -> dict[date, dict[str, RuleResult]]:
    """The counted rules' results on each date of ``df``: counts from one grouped aggregation
    (one more per distribution rule), verdicts from each date's own expectation."""
    template = next(iter(suites.values()))
    maps = [n for n in names if isinstance(template.rule(n).expectation, _countable_maps())]
    aggregates = [F.count(F.lit(1)).alias("rows")]
    for i, name in enumerate(maps):
        null, unexpected = _map_counts(template.rule(name).expectation)
        aggregates += [
            F.sum(F.when(null, 1).otherwise(0)).alias(f"null_{i}"),
            F.sum(F.when(unexpected, 1).otherwise(0)).alias(f"unexpected_{i}"),
        ]
    by_date = {row[_DATE]: row for row in df.groupBy(_DATE).agg(*aggregates).collect()}
    value_counts: dict[str, dict[date, list]] = {}
    for name in names:
        if name in maps:
            continue
        column = template.rule(name).expectation.column
        tally: dict[date, list] = {}
        for row in (
            df.where(F.col(column).isNotNull())
            .groupBy(_DATE, F.col(column).alias("value"))
            .count()
            .collect()
        ):
            tally.setdefault(row[_DATE], []).append((row["value"], row["count"]))
        value_counts[name] = tally
    runtime = {"result_format": COUNTS_ONLY}
    out: dict[date, dict[str, RuleResult]] = {}
    for day, suite in suites.items():
        row = by_date[day]
        out[day] = {}
        for name in names:
            rule = suite.rule(name)
            expectation = rule.expectation
            if name in maps:
                i = maps.index(name)
                map_metric = expectation.map_metric
                metrics = {
                    "table.row_count": row["rows"],
                    "column_values.nonnull.unexpected_count": row[f"null_{i}"],
                    f"{map_metric}.unexpected_count": row[f"unexpected_{i}"],
                }
            else:
                # GX's column.value_counts: the non-null values' counts, sorted by value.
                pairs = sorted(value_counts[name].get(day, []), key=lambda p: p[0])
                values = [p[0] for p in pairs]
                counts = pd.Series(
                    [p[1] for p in pairs],
                    index=pd.Index(data=values, name="value"),
                    name="count",
                )
                metrics = {
                    "column.value_counts": counts,
                    "column_values.nonnull.count": int(counts.sum()),
                }
            outcome = expectation._validate(metrics, runtime_configuration=runtime)
            detail = outcome.get("result") or {}
            out[day][name] = RuleResult(
                name=rule.name,
                severity=rule.severity,
                description=rule.description,
                success=bool(outcome["success"]),
                element_count=detail.get("element_count"),
                unexpected_count=detail.get("unexpected_count"),
                observed_value=_plain(detail.get("observed_value")),
            )
    return out


def _sample_value(expectation: "Expectation", row: dict) -> Any:
    """The offending value GX samples for a rule alone, from an offending row's index entry
    (which carries the rule's columns)."""
    if isinstance(expectation, gx_expectation.MulticolumnMapExpectation):
        return {c: row.get(c) for c in expectation.column_list}
    return row.get(expectation.column)


def _split_by_date(
    rule: Rule, entries: list[dict], key: tuple[str, ...], small: PandasFrame | None = None
) -> dict[date, tuple[int, list[str], list[dict[str, Any]]]]:
    """A lookup's offending rows of ``rule`` by date: (count, sample, keys), as ``validate`` on
    that date alone reports them (on pandas, ``small``: as the Spark engine reports them)."""
    if small is not None:
        entries = [{k: _native(small.value(k, v)) for k, v in entry.items()} for entry in entries]
    # Alone, the sample is of the values GX brought back with the keys.
    sampled = min(SAMPLE_VALUES, MAX_OFFENDING_KEYS)
    by_date: dict[date, list[dict]] = {}
    for entry in entries:
        by_date.setdefault(_as_date(entry.get(_DATE)), []).append(entry)
    return {
        day: (
            len(rows),
            [str(_sample_value(rule.expectation, r)) for r in rows[:sampled]],
            [{k: _plain(r.get(k)) for k in key} for r in rows[:MAX_OFFENDING_KEYS]],
        )
        for day, rows in by_date.items()
    }


def _native(value: Any) -> Any:
    """A numpy scalar as the Python value Spark collects (its ``str`` inside a dict is Python's)."""
    return value.item() if isinstance(value, np.generic) else value


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _prepared(df: DataFrame, template: Suite, days: list[date]) -> DataFrame:
    """``df``'s ``days``, prepared: together, or each on its own (``Suite.prepare_per_date``)."""
    frame = df.where(F.col(_DATE).isin(days))
    if template.prepare is None:
        return frame
    if not template.prepare_per_date:
        return template.prepare(frame)
    parts = [template.prepare(df.where(F.col(_DATE) == F.lit(day))) for day in days]
    prepared = parts[0]
    for part in parts[1:]:
        prepared = prepared.unionByName(part)
    return prepared


def validate_dates(
    df: DataFrame,
    suite_for: Callable[[date], Suite],
    business_dates: Sequence[date],
    docs_dir: str | None = None,
) -> dict[date, ValidationReport]:
    """Validate each business date of ``df`` against its suite, in as few GX passes as it can.

    One date is ``validate``. Over several dates (``plan_dates``): the rules alike on every date
    and row-level run in one GX pass over all the dates; aggregate rules are judged per date from
    one grouped aggregation; when a rule failed, one more GX pass over all the dates names its
    offending rows (and, for a row-level rule, how many each date has). Each date gets exactly the
    verdicts, counts, samples and offending keys ``validate`` gives it alone. Dates without rows
    pass vacuously.
    """
    days = sorted(set(business_dates))
    if len(days) == 1:
        return {days[0]: validate(df, suite_for(days[0]), docs_dir)}
    counts = {r[0]: r[1] for r in df.groupBy(_DATE).count().collect()}
    suites = {day: suite_for(day) for day in days}
    reports = {day: _vacuous(suites[day]) for day in days if not counts.get(day)}
    with_rows = [day for day in days if counts.get(day)]
    if not with_rows:
        return reports
    if len(with_rows) == 1:
        day = with_rows[0]
        reports[day] = validate(df.where(F.col(_DATE) == F.lit(day)), suites[day], docs_dir)
        return {d: reports[d] for d in days}
    live = {day: suites[day] for day in with_rows}
    plan = plan_dates(live)
    run = _Run(
        suites=live,
        counts=counts,
        # Rules validated on one date alone: those with a per-date form only, and those with more
        # offending rows than a lookup over every date brings back.
        alone={day: list(plan.per_date) for day in with_rows},
    )
    if plan.ranged or plan.counted:
        template = live[with_rows[0]]
        prepared = _prepared(df, template, with_rows).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            if plan.counted:
                # Spark alone: outside the GX lock.
                for day, by_name in _count_per_date(prepared, live, plan.counted).items():
                    run.results[day].update(by_name)
            small = None
            rules = [*plan.ranged, *(template.rule(n) for n in plan.counted)]
            bound = gx_pandas_max_rows()
            if plan.ranged and bound > 0:
                small = pandas_engine.collect(prepared, rules, (*template.key, _DATE), bound)
                if small is not None and small.frame is None:
                    small = None
            with _GX_LOCK:
                _validate_together(prepared, plan, run, docs_dir, small)
            for day in with_rows:
                run.engines[day].add("spark" if small is None else "pandas")
        finally:
            prepared.unpersist()
    for day in with_rows:
        suite = live[day]
        names = set(run.alone[day])
        if names:
            own = validate(
                df.where(F.col(_DATE) == F.lit(day)),
                Suite(
                    suite.name,
                    suite.key,
                    tuple(r for r in suite.rules if r.name in names),
                    suite.prepare,
                ),
                docs_dir,
            )
            run.results[day].update({r.name: r for r in own.results})
            run.passes[day] += own.passes
            run.docs[day] = own.docs_url or run.docs[day]
            run.failures_docs[day] = own.failures_docs_url or run.failures_docs[day]
            if own.engine:
                run.engines[day].add(own.engine)
        reports[day] = ValidationReport(
            suite=suite.name,
            rows=counts[day],
            results=[run.results[day][rule.name] for rule in suite.rules],
            docs_url=run.docs[day],
            failures_docs_url=run.failures_docs[day],
            passes=run.passes[day],
            engine="+".join(sorted(run.engines[day])) or None,
        )
    return {day: reports[day] for day in days}


@dataclass
class _Run:
    """What a run over several dates has found so far, date by date."""

    suites: dict[date, Suite]
    counts: dict[date, int]
    alone: dict[date, list[str]]
    results: dict[date, dict[str, RuleResult]] = field(default_factory=dict)
    passes: dict[date, int] = field(default_factory=dict)
    docs: dict[date, str | None] = field(default_factory=dict)
    failures_docs: dict[date, str | None] = field(default_factory=dict)
    # GX's engines that validated each date.
    engines: dict[date, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for day in self.suites:
            self.engines.setdefault(day, set())
            self.results.setdefault(day, {})
            self.passes.setdefault(day, 0)
            self.docs.setdefault(day, None)
            self.failures_docs.setdefault(day, None)


def _validate_together(
    prepared: DataFrame,
    plan: DatePlan,
    run: _Run,
    docs_dir: str | None,
    small: PandasFrame | None = None,
) -> None:
    """The GX passes over every date at once: fills ``run.results`` (the counted rules' are in
    already) and leaves in ``run.alone`` what a date must validate alone. With ``small`` (the
    prepared dates collected), on GX's pandas engine."""
    frame = prepared if small is None else small.frame
    suites, counts, results = run.suites, run.counts, run.results
    days = list(suites)
    template = suites[days[0]]
    context = _context(docs_dir)
    # The passes over all the dates are counted once, on the first date.
    first = days[0]
    # Rules whose offending rows are looked up: name -> the dates they failed on (None: not known
    # yet, a row-level rule that failed over the run).
    to_explain: dict[str, set[date] | None] = {}
    # Offending rows over the run of each rule looked up (what the lookup must bring back).
    offending: dict[str, int] = {}
    if plan.ranged:
        counted, url = _run_pass(
            context, frame, template.name, list(plan.ranged), COUNTS_ONLY, bool(docs_dir)
        )
        run.passes[first] += 1
        for day in days:
            run.docs[day] = url
        for item in counted:
            name = item.expectation_config.meta["rule"]
            detail = item.result or {}
            unexpected = detail.get("unexpected_count") or 0
            if not item.success and not unexpected:
                # No offending row, yet no verdict (GX raised): each date alone says what it is.
                for day in days:
                    run.alone[day].append(name)
            elif item.success and not unexpected:
                for day in days:
                    rule = suites[day].rule(name)
                    results[day][name] = RuleResult(
                        name=rule.name,
                        severity=rule.severity,
                        description=rule.description,
                        success=True,
                        element_count=counts[day],
                        unexpected_count=0,
                    )
            else:
                to_explain[name] = None
                offending[name] = unexpected
    if plan.counted:  # judged per date already (``_count_per_date``)
        for name in plan.counted:
            failed = {
                day
                for day in days
                if not results[day][name].success and results[day][name].unexpected_count
            }
            if failed:
                to_explain[name] = failed
                offending[name] = sum(results[day][name].unexpected_count or 0 for day in days)
    # One lookup brings back at most this many offending rows of a rule: on average
    # MAX_OFFENDING_KEYS a date, what validating the dates one by one would bring back at most.
    bound = MAX_OFFENDING_KEYS * len(days)
    lookup = {name: dates for name, dates in to_explain.items() if offending[name] <= bound}
    for name, dates in to_explain.items():
        if name not in lookup:
            for day in dates if dates is not None else days:
                run.alone[day].append(name)
    if not lookup:
        return
    ranged = {r.name: r for r in plan.ranged}
    rules = [ranged.get(name) or template.rule(name) for name in lookup]
    key = (*template.key, _DATE)
    explained, url = _run_pass(
        context,
        frame,
        f"{template.name}_failures",
        rules,
        {
            "result_format": "SUMMARY",
            "unexpected_index_column_names": list(key),
            "return_unexpected_index_query": False,
            "partial_unexpected_count": bound,
        },
        bool(docs_dir),
    )
    run.passes[first] += 1
    for item in explained:
        name = item.expectation_config.meta["rule"]
        entries = [
            e
            for e in (item.result or {}).get("partial_unexpected_index_list") or []
            if isinstance(e, dict)
        ]
        found = _split_by_date(template.rule(name), entries, template.key, small)
        if sum(n for n, _, _ in found.values()) != offending[name]:
            # Not every offending row came back (GX raised): each date alone says what it is.
            for day in lookup[name] if lookup[name] is not None else days:
                run.alone[day].append(name)
            continue
        for day in days:
            rule = suites[day].rule(name)
            n, sample, keys = found.get(day, (0, [], []))
            if lookup[name] is None:  # a row-level rule: the lookup counts each date's rows
                results[day][name] = RuleResult(
                    name=rule.name,
                    severity=rule.severity,
                    description=rule.description,
                    success=n == 0,
                    element_count=counts[day],
                    unexpected_count=n,
                )
            elif day not in lookup[name]:
                continue
            if n:
                results[day][name].sample = sample
                results[day][name].offending_keys = keys
                run.failures_docs[day] = url
