"""Run a suite with Great Expectations on a Spark DataFrame, in one validation."""

from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark.sql import DataFrame

from expectations.suite import ERROR, Suite


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


@dataclass
class ValidationReport:
    """The verdict on a whole suite."""

    suite: str
    rows: int
    results: list[RuleResult]

    @property
    def blocking_failures(self) -> list[RuleResult]:
        """Failed rules whose severity blocks the publish."""
        return [r for r in self.results if not r.success and r.severity == ERROR]

    @property
    def passed(self) -> bool:
        """True when no blocking rule failed."""
        return not self.blocking_failures


def _context():
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def validate(df: DataFrame, suite: Suite) -> ValidationReport:
    """Validate ``df`` against ``suite`` and report every rule's verdict."""
    context = _context()
    source = context.data_sources.add_spark(name=f"{suite.name}_source")
    asset = source.add_dataframe_asset(name=suite.name)
    batch_definition = asset.add_batch_definition_whole_dataframe(f"{suite.name}_batch")
    gx_suite = gx.ExpectationSuite(name=suite.name)
    for rule in suite.rules:
        rule.expectation.meta = {"rule": rule.name}
        gx_suite.add_expectation(rule.expectation)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    outcome = batch.validate(gx_suite, result_format="SUMMARY")
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
            )
        )
    return ValidationReport(suite=suite.name, rows=rows or 0, results=results)
