"""Reconciliations: pure DataFrame functions that match records and report exceptions."""
