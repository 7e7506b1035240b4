#!/usr/bin/env bash
# Spark's own SQL shell (spark-sql) on the lakehouse catalog, with Delta configured exactly as the
# pipeline runs it. With QUERY set, runs that one statement, prints the result with a header and
# exits (for scripts and cron); without it, opens the interactive shell.
set -euo pipefail
source "$(dirname "$0")/spark_env.sh"
args=("${conf[@]}" --conf spark.sql.cli.print.header=true --name lakehouse-sql)
if [ -n "${QUERY:-}" ]; then
  exec "$SPARK_HOME/bin/spark-sql" "${args[@]}" --silent -e "$QUERY"
fi
exec "$SPARK_HOME/bin/spark-sql" "${args[@]}"
