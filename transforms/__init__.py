"""Pure Spark logic: ``DataFrame -> DataFrame`` functions with no IO, tested with chispa."""
