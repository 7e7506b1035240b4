"""Great Expectations is imported by the first validation, not by the definitions."""

import subprocess
import sys
from pathlib import Path

import great_expectations.expectations as gxe
from great_expectations.expectations.expectation import Expectation

from expectations.gx import ExpectationSpec, expect
from expectations.reconciliation import recon_matches_suite
from expectations.suite import ERROR, Rule
from tests.gold_helpers import DAY

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_definitions_does_not_import_gx_and_warns_nothing():
    code = (
        "import sys, pipelines.definitions; "
        "print(sorted(m for m in sys.modules if m.startswith('great_expectations')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
    # Dagster's beta warning for ``backfill_policy`` (one per asset) is silenced, and it was the
    # only warning: every process that imports the definitions printed forty of them.
    assert "Warning" not in done.stderr, done.stderr[-2000:]


def test_a_spec_builds_gxs_expectation_once_on_first_use():
    spec = expect.ExpectColumnValuesToBeInSet(column="rule", value_set=["A", "B"])
    assert (spec.type_name, spec.kwargs) == (
        "ExpectColumnValuesToBeInSet",
        {"column": "rule", "value_set": ["A", "B"]},
    )
    rule = Rule("rule_known", ERROR, "Known rules.", spec)
    built = rule.expectation
    assert built == gxe.ExpectColumnValuesToBeInSet(column="rule", value_set=["A", "B"])
    assert rule.expectation is built
    # A rule may still be given GX's object itself (the tests' own suites are).
    plain = gxe.ExpectColumnValuesToBeUnique(column="id")
    assert Rule("id_unique", ERROR, "Unique ids.", plain).expectation is plain


def test_every_rule_of_a_declared_suite_builds():
    suite = recon_matches_suite(DAY)
    assert all(isinstance(rule.spec, ExpectationSpec) for rule in suite.rules)
    assert all(isinstance(rule.expectation, Expectation) for rule in suite.rules)
