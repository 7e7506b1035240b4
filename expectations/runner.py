"""Run a suite with Great Expectations on a Spark DataFrame, in as few Spark passes as it can.

GX computes a rule's counts as aggregates it bundles into one Spark job per column, but every
offending-row detail (a sample of values, the rows' keys) costs it one more job per rule, whether
or not the rule found anything. So a suite runs in two passes:

1. every rule with counts only (``SUMMARY`` without partial lists): the verdicts, row and
   unexpected counts and observed values, in a few bundled jobs;
2. only when some rule failed on offending rows: those rules again with a sample of their
   offending values and the keys of up to ``MAX_OFFENDING_KEYS`` offending rows.

A partition that passes, the common case, pays for the first pass alone.
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from expectations.suite import ERROR, Rule, Suite

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


def _context(docs_dir: str | None):
    # In memory, without the temporary docs site GX's default ephemeral context makes (and never
    # removes) under /tmp for every validation.
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults())
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir:
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": docs_dir,
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def _run_pass(
    context, df: DataFrame, name: str, rules: list[Rule], result_format: dict, docs: bool
) -> tuple[list, str | None]:
    """One GX validation of ``rules`` on ``df``: its expectation results and Data Docs page."""
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
    if df.isEmpty():
        return _vacuous(suite)
    if suite.prepare is not None:
        df = suite.prepare(df)
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


def _validate(df: DataFrame, suite: Suite, docs_dir: str | None) -> ValidationReport:
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
        results=list(results.values()),
        docs_url=docs_url,
        passes=1,
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
            # GX on Spark returns the offending rows' key columns for row-level rules.
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
        result.sample = [
            str(v) for v in (detail.get("partial_unexpected_list") or [])[:SAMPLE_VALUES]
        ]
        result.offending_keys = [
            {k: _plain(row.get(k)) for k in suite.key}
            for row in (detail.get("partial_unexpected_index_list") or [])[:MAX_OFFENDING_KEYS]
            if isinstance(row, dict)
        ]
    return report


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a value GX returns (numpy scalars, dates)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _range_safe(rule: Rule) -> Rule | None:
    """``rule`` in a form that holds over several dates iff it holds on each; None if it can't.

    Row-level rules (every value null-free, in a set, in range...) hold over a union of dates
    exactly when they hold on each date. Uniqueness is per date, so ``business_date`` joins the
    key. Rules on aggregates (``mostly`` shares, distributions) do not add up, and stay per date.
    """
    expectation = rule.expectation
    if isinstance(expectation, gxe.ExpectColumnValuesToBeUnique):
        expectation = gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[expectation.column, "business_date"]
        )
    elif isinstance(expectation, gxe.ExpectCompoundColumnsToBeUnique):
        expectation = expectation.copy(
            update={"column_list": [*expectation.column_list, "business_date"]}
        )
    elif not isinstance(expectation, ColumnMapExpectation | MulticolumnMapExpectation):
        return None
    if (getattr(expectation, "mostly", 1) or 1) < 1:
        return None
    return Rule(rule.name, rule.severity, rule.description, expectation)


def _same_rule(rules: list[Rule]) -> bool:
    """Whether a rule is configured alike on every date (it does not depend on the date)."""
    configs = {repr(r.expectation.configuration.to_json_dict()["kwargs"]) for r in rules}
    return len(configs) == 1


def validate_dates(
    df: DataFrame,
    suite_for: Callable[[date], Suite],
    business_dates: Sequence[date],
    docs_dir: str | None = None,
) -> dict[date, ValidationReport]:
    """Validate each business date of ``df`` against its suite, in as few GX passes as it can.

    One date is ``validate``. Over several dates, the rules that read the same on every date and
    are row-level run once over all the dates (offending keys carry ``business_date``); a rule
    that fails there is looked up date by date, so each date gets its exact verdict. Rules that
    depend on the date or on aggregates run per date. Dates without rows pass vacuously.
    """
    days = sorted(set(business_dates))
    if len(days) == 1:
        return {days[0]: validate(df, suite_for(days[0]), docs_dir)}
    counts = {r[0]: r[1] for r in df.groupBy("business_date").count().collect()}
    suites = {day: suite_for(day) for day in days}
    template = suites[days[0]]
    with_rows = [day for day in days if counts.get(day)]
    shared: list[Rule] = []
    for rule in template.rules:
        same = [suites[day].rule(rule.name) for day in days]
        ranged = _range_safe(rule) if _same_rule(same) else None
        if ranged is not None:
            shared.append(ranged)
    shared_names = {r.name for r in shared}
    reports: dict[date, ValidationReport] = {}
    range_report = None
    if with_rows and shared:
        # Each date is prepared on its own (a journal's net, say, is a per-date window).
        prepared = None
        for day in with_rows:
            part = df.where(F.col("business_date") == F.lit(day))
            if template.prepare is not None:
                part = template.prepare(part)
            prepared = part if prepared is None else prepared.unionByName(part)
        range_suite = Suite(template.name, (*template.key, "business_date"), tuple(shared))
        range_report = validate(prepared, range_suite, docs_dir)
    failed_shared = (
        {r.name for r in range_report.results if not r.success} if range_report else set()
    )
    for day in days:
        suite = suites[day]
        if not counts.get(day):
            reports[day] = _vacuous(suite)
            continue
        own = [r for r in suite.rules if r.name not in shared_names or r.name in failed_shared]
        part = df.where(F.col("business_date") == F.lit(day))
        own_report = (
            validate(part, Suite(suite.name, suite.key, tuple(own), suite.prepare), docs_dir)
            if own
            else None
        )
        by_name = {r.name: r for r in own_report.results} if own_report else {}
        results = [
            by_name.get(rule.name)
            or RuleResult(
                name=rule.name,
                severity=rule.severity,
                description=rule.description,
                success=True,
                element_count=counts[day],
                unexpected_count=0,
            )
            for rule in suite.rules
        ]
        first = day == with_rows[0]
        reports[day] = ValidationReport(
            suite=suite.name,
            rows=counts[day],
            results=results,
            docs_url=(own_report.docs_url if own_report else None)
            or (range_report.docs_url if range_report else None),
            failures_docs_url=own_report.failures_docs_url if own_report else None,
            # The pass over all dates is counted once, on the first date with rows.
            passes=(own_report.passes if own_report else 0)
            + (range_report.passes if range_report and first else 0),
        )
    return reports
