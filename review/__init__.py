"""The review page: analysts accept or override queued enrichment values (issue 15)."""
