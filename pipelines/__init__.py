"""Wiring: configuration, resources, jobs, schedules and the Dagster ``Definitions``."""
