"""Data Docs pages render through GX's own views, their templates compiled once per process
(expectations/docs_views.py). Spark-free: GX's pandas engine."""

from pathlib import Path
from urllib.parse import urlparse

import great_expectations.expectations as gxe
import jinja2
import pandas as pd
import pytest

from expectations import runner
from expectations.docs_views import COMPILED_TEMPLATES
from expectations.suite import ERROR, Rule

RULES = [
    Rule(
        "id_unique",
        ERROR,
        "One row per id.",
        gxe.ExpectColumnValuesToBeUnique(column="id"),
    )
]


def _page(tmp_path: Path, name: str) -> tuple[list, str]:
    frame = pd.DataFrame({"id": [1, 2, 2]})
    context = runner._context(str(tmp_path))
    results, url = runner._run_pass(context, frame, name, RULES, runner.COUNTS_ONLY, True)
    assert url is not None
    return results, Path(urlparse(url).path).read_text()


def test_docs_pages_compile_gx_templates_once(tmp_path, monkeypatch: pytest.MonkeyPatch):
    compiled: list[str | None] = []
    compile_ = jinja2.Environment.compile

    def counting(self, source, name=None, *args, **kwargs):
        compiled.append(name)
        return compile_(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    COMPILED_TEMPLATES.clear()

    results, page = _page(tmp_path / "first", "first_suite")
    [result] = results
    assert not result.success and result.result["unexpected_count"] == 2
    # The page is GX's validation page of this run, its failed rule on it.
    assert "first_suite" in page and "values must be unique" in page
    first = len(compiled)
    assert first > 10 and len(COMPILED_TEMPLATES) > 10, "GX's page and index templates compiled"

    # A second validation (a new GX context, new views) compiles nothing, and renders its page.
    _, again = _page(tmp_path / "second", "second_suite")
    assert len(compiled) == first
    assert "second_suite" in again
