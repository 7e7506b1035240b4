#!/usr/bin/env bash
# Start the Spark Thrift Server (JDBC/ODBC, HiveServer2 protocol) on the lakehouse catalog, with
# Delta configured exactly as the pipeline runs it. BI tools and beeline connect to
#   jdbc:hive2://${THRIFT_HOST:-127.0.0.1}:${THRIFT_PORT:-10000}/default
# It runs in the foreground; stop it with Ctrl-C. The embedded metastore admits one Spark
# driver at a time: stop the server before a pipeline run, or use an external metastore.
set -euo pipefail
# A service that runs for long: the JVM's own compiler (infra/spark.py, long_lived).
SPARK_CONF_ARGS=--long-lived source "$(dirname "$0")/spark_env.sh"
exec "$SPARK_HOME/bin/spark-submit" \
  --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 \
  --name lakehouse-thrift-server \
  "${conf[@]}" \
  --hiveconf "hive.server2.thrift.port=${THRIFT_PORT:-10000}" \
  --hiveconf "hive.server2.thrift.bind.host=${THRIFT_HOST:-127.0.0.1}" \
  spark-internal
