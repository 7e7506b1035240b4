"""Suites as Dagster asset checks: one check per rule, blocking when its severity is ``error``."""

from collections.abc import Iterable
from datetime import date

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue
from pyspark.sql import DataFrame

from expectations.runner import ValidationReport
from expectations.suite import ERROR

# Offending keys shown in the UI per failed rule; all of them are in ops.validation_results.
KEYS_IN_METADATA = 20


def suite_check_specs(
    asset: str, rules: Iterable[tuple[str, str, str]], gated_per_date: bool = False
) -> list[AssetCheckSpec]:
    """Check specs for ``(name, severity, description)`` rules on ``asset``.

    Error-severity rules block what follows. On a staged gold table (``gated_per_date``) the
    publish step is the gate instead: it refuses each date whose audit failed and publishes the
    others, which a blocking check (one verdict for the whole run) would hold back too.
    """
    return [
        AssetCheckSpec(
            name=name,
            asset=asset,
            description=f"[{severity}] {description}"
            + (" (a date that fails is refused at publish)" if gated_per_date else ""),
            blocking=severity == ERROR and not gated_per_date,
        )
        for name, severity, description in rules
    ]


def suite_check_results(
    reports: dict[date, tuple[ValidationReport, int]], asset: str, expected: Iterable[str]
) -> list[AssetCheckResult]:
    """One result per expected check over every date of the run.

    A check passes when it passed on every date; its metadata names the dates where it failed,
    with counts and offending keys. A rule no date evaluated (no history for drift yet) passes and
    says it was not evaluated.
    """
    results = []
    for name in expected:
        verdicts = {
            day: (next((r for r in report.results if r.name == name), None), version)
            for day, (report, version) in sorted(reports.items())
        }
        evaluated = {day: (r, v) for day, (r, v) in verdicts.items() if r is not None}
        if not evaluated:
            results.append(
                AssetCheckResult(
                    asset_key=asset,
                    check_name=name,
                    passed=True,
                    metadata={"not_evaluated": "no reference data yet for this rule"},
                )
            )
            continue
        failed = {day: r for day, (r, _) in evaluated.items() if not r.success}
        severity = next(iter(evaluated.values()))[0].severity
        metadata: dict = {
            "dates_checked": len(evaluated),
            "rows_checked": sum(r.element_count or 0 for r, _ in evaluated.values()),
            "unexpected": sum(r.unexpected_count or 0 for r, _ in evaluated.values()),
            "delta_versions": MetadataValue.json(
                {day.isoformat(): v for day, (_, v) in evaluated.items()}
            ),
        }
        if failed:
            metadata["failed_dates"] = ", ".join(day.isoformat() for day in failed)
            metadata["sample_values"] = MetadataValue.json(
                {day.isoformat(): r.sample for day, r in failed.items()}
            )
            keys = [
                {"business_date": day.isoformat(), **key}
                for day, r in failed.items()
                for key in r.offending_keys
            ]
            if keys:
                metadata["offending_keys"] = MetadataValue.json(keys[:KEYS_IN_METADATA])
            observed = {
                d.isoformat(): r.observed_value for d, r in failed.items() if r.observed_value
            }
            if observed:
                metadata["observed_value"] = MetadataValue.json(observed)
        results.append(
            AssetCheckResult(
                asset_key=asset,
                check_name=name,
                passed=not failed,
                severity=AssetCheckSeverity.ERROR if severity == ERROR else AssetCheckSeverity.WARN,
                metadata=metadata,
            )
        )
    return results


def validation_metadata(reports: list[ValidationReport]) -> dict:
    """What an audited step reports of its validations (one report per date of the run).

    Rows validated, rules passed and failed, how many GX passes ran (2 where offending rows were
    looked up), and links to the last date's Data Docs: the whole suite, and the failed rules'
    offending values when there were any.
    """
    failed = sorted({r.name for rep in reports for r in rep.results if not r.success})
    metadata: dict = {
        "rows_validated": sum(rep.rows for rep in reports),
        "validation_passed": all(rep.passed for rep in reports),
        "rules_passed": sum(r.success for rep in reports for r in rep.results),
        "rules_total": sum(len(rep.results) for rep in reports),
        "rules_failed": ", ".join(failed) or "none",
        "gx_validation_passes": sum(rep.passes for rep in reports),
    }
    last = reports[-1] if reports else None
    if last is not None and last.docs_url:
        metadata["data_docs"] = MetadataValue.url(last.docs_url)
    if last is not None and last.failures_docs_url:
        metadata["data_docs_failures"] = MetadataValue.url(last.failures_docs_url)
    return metadata


def markdown_preview(df: DataFrame, rows: int = 5) -> str:
    """The first rows of ``df`` as a Markdown table, for a materialization's metadata."""
    sample = df.limit(rows).collect()
    header = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = [
        "| " + " | ".join("" if v is None else str(v).replace("|", "/")[:60] for v in row) + " |"
        for row in sample
    ]
    return "\n".join([header, rule, *body])
