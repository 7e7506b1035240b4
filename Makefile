# The front door. Every target bootstraps what it needs (venv, locked deps, Delta jars) first.
SHELL := /bin/bash
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export PYTHONPATH := $(CURDIR)
# make sql QUERY='…' hands the statement over in the environment, quotes intact.
export QUERY
PY := .venv/bin/python

.PHONY: help setup jars run test test-fast test-unit test-reliability ui review docs sql thrift bench bench-close bench-load bench-enrich bench-backfill bench-broken bench-docs lint format lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Create .venv from requirements.lock, fetch the Delta jars, build Spark's class archive (idempotent)
	@bash scripts/bootstrap.sh

jars: setup ## Re-fetch the Delta jars for the installed pyspark / delta-spark through Maven (and rebuild the class archive)
	$(PY) scripts/fetch_delta_jars.py
	$(PY) scripts/build_class_archive.py

run: setup ## Sample landing zone + the close of the last 3 business dates; ARGS='--days 1' etc.
	$(PY) -m cli run $(ARGS)

# Two workers (pytest-xdist), one test file at a time each: the tests that read one session-scoped
# lakehouse are in one file (tests/e2e/test_close.py, tests/integration/test_published_lakehouse.py),
# so it is built once. Files go to the workers in collection order, which puts the costliest first
# (tests/conftest.py COSTLIEST_FIRST). TEST_WORKERS=0 runs in-process.
TEST_WORKERS ?= 2
test: setup ## Run the whole test suite (two workers)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: setup ## Everything but the end-to-end Dagster runs (two workers)
	$(PY) -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-unit: setup ## Spark-free unit tests only (seconds)
	$(PY) -m pytest -m "not spark and not slow"

test-reliability: setup ## Reliability suite: crashes, concurrent writers, bad input, business days, retention (docs/RUNBOOK.md)
	$(PY) -m pytest tests/reliability

ui: setup ## Start the Dagster UI (webserver + daemon) on http://127.0.0.1:3000
	.venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

review: setup ## The review page for analysts on http://127.0.0.1:8765 (REVIEW_USERS, REVIEW_PORT)
	$(PY) -m review

docs: setup ## Print (and open) the latest Great Expectations Data Docs page
	$(PY) -m cli docs

sql: setup ## spark-sql shell on the lakehouse; or one statement: make sql QUERY='SELECT ...'
	bash scripts/spark_sql.sh

thrift: setup ## Spark Thrift Server (JDBC/ODBC) for BI tools on jdbc:hive2://127.0.0.1:10000
	bash scripts/thrift_server.sh

bench: setup ## Validation cost (GX vs one aggregation; ROWS='1000000')
	$(PY) benchmarks/validation_cost.py $(if $(ROWS),--rows $(ROWS))

bench-close: setup ## The close of one date at scale, Dagster vs bare PySpark (GL_LINES='1000000')
	$(PY) benchmarks/close_scale.py $(if $(GL_LINES),--gl-lines $(GL_LINES))

bench-load: setup ## Peak RSS of a SCALE-times sample day's close through Dagster (SCALE='10'), vs 18 GiB
	$(PY) benchmarks/close_scale.py --mode dagster --gl-lines $$((600 * $(or $(SCALE),10))) --expense-rows $$((200 * $(or $(SCALE),10)))

bench-enrich: setup ## Enrichment costs: packing, cache re-run, mapInPandas vs UDF, limiter vs 429s
	$(PY) benchmarks/enrichment_costs.py

bench-backfill: setup ## Cost per date: one date, a ranged run (DATES='30'), an unchanged re-run, ranged = one by one
	$(PY) benchmarks/backfill_cost.py $(if $(DATES),--dates $(DATES))

bench-broken: setup ## A night against a broken LLM endpoint (malformed, 500, 401): requests, fallback, then healthy again
	$(PY) benchmarks/broken_endpoint.py

bench-docs: setup ## Invoice extraction on real labelled invoices: precision/recall, pages/s, pypdf vs pdfplumber
	$(PY) benchmarks/document_extraction.py

lint: setup ## Ruff lint and format check
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format: setup ## Apply ruff format and safe fixes
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

lock: setup ## Re-resolve requirements.lock from pyproject.toml
	.venv/bin/uv pip compile pyproject.toml --extra dev -o requirements.lock --python $(PY) --no-header

clean: ## Remove the lakehouse data and the Dagster instance (keeps .venv and jars)
	rm -rf .lakehouse .dagster_home
