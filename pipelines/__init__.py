"""Wiring only: the Dagster ``Definitions``, jobs, schedules and sensors."""
