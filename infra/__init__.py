"""Infrastructure below the assets: settings, Spark, Delta tables, write-audit-publish, checks.

Assets import from here; nothing here imports an asset. IO lives here so that an asset body reads
as a transform and a return.
"""
