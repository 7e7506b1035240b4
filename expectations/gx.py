"""Great Expectations, imported where it is first used, not where the suites are declared.

Importing GX costs about 5 s of CPU (its data context and its registry of expectations), and every
process that imports the definitions paid it at start: ``cli run``, Dagster's code server, daemon
and run workers, a run that skips every step. The definitions need only the suites' rule names
(their asset checks), so a suite states each rule's expectation as an ``ExpectationSpec``
(``expect.ExpectColumnValuesToBeUnique(column="id")``: GX's class and arguments), built into GX's
object on first use (``Rule.expectation``); the runner reaches GX through the ``LazyModule``
stand-ins below, whose first attribute read imports the module (Python's import lock makes that
safe from the run's threads).
"""

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any


class LazyModule:
    """A module imported on first attribute access: ``LazyModule("a.b").C`` is ``a.b.C``."""

    def __init__(self, name: str) -> None:
        self._name = name

    def module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.module(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


# ``great_expectations`` itself, its expectations, their base classes, and the execution
# engines' helpers the runner uses.
gx: Any = LazyModule("great_expectations")
gxe: Any = LazyModule("great_expectations.expectations")
gx_expectation: Any = LazyModule("great_expectations.expectations.expectation")
gx_engine_util: Any = LazyModule("great_expectations.execution_engine.util")
gx_config: Any = LazyModule("great_expectations.data_context.types.base")


@dataclass(frozen=True, eq=False)
class ExpectationSpec:
    """A GX expectation, stated now and built on first use: its class in
    ``great_expectations.expectations`` and its keyword arguments."""

    type_name: str
    kwargs: dict[str, Any]

    def build(self) -> Any:
        """GX's expectation (GX checks the arguments here, at the first validation)."""
        return getattr(gxe, self.type_name)(**self.kwargs)


class _Expect:
    """``expect.<GX expectation class>(**kwargs)`` is that expectation's ``ExpectationSpec``."""

    def __getattr__(self, type_name: str) -> Any:
        if not type_name.startswith("Expect"):
            raise AttributeError(type_name)

        def spec(**kwargs: Any) -> ExpectationSpec:
            return ExpectationSpec(type_name, kwargs)

        return spec


expect: Any = _Expect()
