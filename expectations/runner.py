"""Run a suite with Great Expectations on a Spark DataFrame, in one validation."""

from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark.sql import DataFrame

from expectations.suite import ERROR, Suite

# Offending keys kept per failed rule (the count is always exact).
MAX_OFFENDING_KEYS = 1000
DOCS_SITE = "lakehouse"


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

    @property
    def blocking_failures(self) -> list[RuleResult]:
        """Failed rules whose severity blocks the publish."""
        return [r for r in self.results if not r.success and r.severity == ERROR]

    @property
    def passed(self) -> bool:
        """True when no blocking rule failed."""
        return not self.blocking_failures


def _context(docs_dir: str | None):
    context = gx.get_context(mode="ephemeral")
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


def validate(df: DataFrame, suite: Suite, docs_dir: str | None = None) -> ValidationReport:
    """Validate ``df`` against ``suite`` in one GX validation; report every rule's verdict.

    With ``docs_dir``, GX Data Docs (HTML) for this validation are written there and the page's
    address is in the report.
    """
    if df.isEmpty():
        # Every rule is a statement about rows: over no rows each holds, and running GX to say so
        # costs seconds per table (payroll on a non-pay day, a weekend's bank statement).
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
    context = _context(docs_dir)
    source = context.data_sources.add_spark(name=f"{suite.name}_source")
    asset = source.add_dataframe_asset(name=suite.name)
    batch_definition = asset.add_batch_definition_whole_dataframe(f"{suite.name}_batch")
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name))
    for rule in suite.rules:
        rule.expectation.meta = {"rule": rule.name}
        gx_suite.add_expectation(rule.expectation)
    result_format = {
        "result_format": "COMPLETE",
        # GX on Spark returns the offending rows' key columns for row-level rules.
        "unexpected_index_column_names": list(suite.key),
        "return_unexpected_index_query": False,
        "partial_unexpected_count": 10,
    }
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=gx_suite)
    )
    actions = []
    if docs_dir:
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=[DOCS_SITE]))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=suite.name,
            validation_definitions=[definition],
            actions=actions,
            result_format=result_format,
        )
    )
    if suite.prepare is not None:
        df = suite.prepare(df)
    run = checkpoint.run(batch_parameters={"dataframe": df})
    [(identifier, outcome)] = list(run.run_results.items())
    docs_url = None
    if docs_dir:
        urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
        docs_url = urls[0]["site_url"] if urls else None
    results = []
    rows = None
    for item in outcome.results:
        rule = suite.rule(item.expectation_config.meta["rule"])
        detail = item.result or {}
        rows = detail.get("element_count", rows)
        results.append(
            RuleResult(
                name=rule.name,
                severity=rule.severity,
                description=rule.description,
                success=bool(item.success),
                element_count=detail.get("element_count"),
                unexpected_count=detail.get("unexpected_count"),
                sample=[str(v) for v in (detail.get("partial_unexpected_list") or [])[:10]],
                offending_keys=[
                    {k: _plain(row.get(k)) for k in suite.key}
                    for row in (detail.get("unexpected_index_list") or [])[:MAX_OFFENDING_KEYS]
                    if isinstance(row, dict)
                ],
                observed_value=_plain(detail.get("observed_value")),
            )
        )
    return ValidationReport(suite=suite.name, rows=rows or 0, results=results, docs_url=docs_url)


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a value GX returns (numpy scalars, dates)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)
