"""Dagster resources: every external system (Spark, the lakehouse storage, the LLM) lives here."""
