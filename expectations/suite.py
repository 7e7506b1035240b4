"""The shape of a suite: named rules, each with a severity an analyst can read."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame

from expectations.gx import ExpectationSpec

if TYPE_CHECKING:  # imported where it is used (expectations/gx.py)
    from great_expectations.expectations import Expectation

ERROR = "error"  # blocks the publish
WARN = "warn"  # publishes, shows as a warning


@dataclass(frozen=True)
class Rule:
    """One expectation with a stable name (its Dagster asset check) and a severity.

    ``spec`` is GX's expectation, or its ``ExpectationSpec`` (``expectations/gx.py``): built, and
    GX imported, when the rule is first validated, not when its suite is declared.
    """

    name: str
    severity: str
    description: str
    spec: "Expectation | ExpectationSpec"

    @cached_property
    def expectation(self) -> "Expectation":
        """GX's expectation object."""
        return self.spec.build() if isinstance(self.spec, ExpectationSpec) else self.spec


@dataclass(frozen=True)
class Suite:
    """The rules one table's partition must meet, and the key that identifies a bad row."""

    name: str
    key: tuple[str, ...]
    rules: tuple[Rule, ...]
    # Adds the derived columns set-level rules check (a journal's net, say), in the same pass.
    # A run's dates are prepared together, so a derived column must depend on its row (or its
    # date's rows) only, unless ``prepare_per_date``.
    prepare: Callable[[DataFrame], DataFrame] | None = None
    # ``prepare`` sees one date at a time (a window over the frame): a run's dates are prepared
    # one by one and unioned, which costs Spark a plan branch a date.
    prepare_per_date: bool = False

    def rule(self, name: str) -> Rule:
        """The rule called ``name``."""
        return next(r for r in self.rules if r.name == name)
