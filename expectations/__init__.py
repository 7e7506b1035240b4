"""Quality rules as code: one suite per table, run with Great Expectations before publishing."""
