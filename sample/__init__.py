"""The deterministic sample landing zone (every source, seeded anomalies, an answer key)."""
