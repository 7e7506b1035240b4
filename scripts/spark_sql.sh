#!/usr/bin/env bash
# Spark's own SQL shell (spark-sql) on the lakehouse catalog, with Delta configured exactly as the
# pipeline runs it. With QUERY set, runs that one statement, prints the result with a header and
# exits (for scripts and cron); without it, opens the interactive shell.
set -euo pipefail
cd "$(dirname "$0")/.."
export SPARK_HOME="$(.venv/bin/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export PYSPARK_PYTHON="$PWD/.venv/bin/python"
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
mapfile -t conf < <(PYTHONPATH=. .venv/bin/python -m pipelines.cli spark-conf)
args=("${conf[@]}" --conf spark.sql.cli.print.header=true --name lakehouse-sql)
if [ -n "${QUERY:-}" ]; then
  exec "$SPARK_HOME/bin/spark-sql" "${args[@]}" --silent -e "$QUERY"
fi
exec "$SPARK_HOME/bin/spark-sql" "${args[@]}"
