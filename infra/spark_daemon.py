"""Spark's Python daemon for a local driver, with the modules of the pipeline's Arrow UDFs imported
once, before it forks its workers (``spark.python.daemon.module``, set by ``infra.spark``).

Spark starts one Python daemon per executor, and the daemon forks a worker for each Python task
that finds no idle one. A forked worker had to import what the task's function needs, pandas and
pyarrow, and the enrichment's modules with the openai SDK: about 3 s of CPU per worker on a slow
2-core machine (2026-12-08), paid many times a close. A worker forked from this daemon starts with
them imported, shared with the daemon's memory until written.

Only modules are imported here, with no thread or connection started (a fork copies the memory of
one thread only). The daemon itself is Spark's (``pyspark.daemon``), which reads the worker module
Spark names on its command line.
"""

import importlib
import os
import sys

# Spark puts archives on the workers' path: its own copies of pyspark and py4j, zips without
# bytecode (each daemon compiled every pyspark module it imported from source), and Spark's core
# jar (5,362 entries, no Python in it). Each task invalidates the import caches, and Python's
# zip importer then read every archive's directory again: 100 empty Python tasks took 12-15 s
# with them and 5.0-6.1 s without them (2026-12-08, a slow 2-core machine). This driver's Python
# has the same pyspark installed, compiled (where it has not, Spark's path is left as it is).
ARCHIVES = tuple(
    p
    for p in sys.path
    if p.endswith(".jar") or (p.endswith(".zip") and "/pyspark/python/lib/" in p)
)
_INSTALLED = any(
    os.path.isfile(os.path.join(p, "pyspark", "__init__.py")) for p in sys.path if p not in ARCHIVES
)
for _archive in ARCHIVES if _INSTALLED else ():
    sys.path.remove(_archive)
    sys.path_importer_cache.pop(_archive, None)

# The modules of the Arrow-batched functions (mapInPandas) and what their bodies import.
PRELOADED = (
    "enrichment.group_summary",
    "enrichment.providers.openai_batch",
    "enrichment.providers.openai_chat",
    "transforms.document_fields",
    "transforms.document_review",
    "transforms.documents",
    "transforms.enrich",
    "transforms.group_summary",
    "transforms.recon.narrative",
)
for _module in PRELOADED:
    importlib.import_module(_module)

import pyspark.daemon  # noqa: E402  (after the path is mended: it imports Spark's worker)

if __name__ == "__main__":
    pyspark.daemon.manager()
