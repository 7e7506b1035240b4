"""The shape of a suite: named rules, each with a severity an analyst can read."""

from collections.abc import Callable
from dataclasses import dataclass

from great_expectations.expectations import Expectation
from pyspark.sql import DataFrame

ERROR = "error"  # blocks the publish
WARN = "warn"  # publishes, shows as a warning


@dataclass(frozen=True)
class Rule:
    """One expectation with a stable name (its Dagster asset check) and a severity."""

    name: str
    severity: str
    description: str
    expectation: Expectation


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
