# Sourced by the Spark launchers: the pyspark install as SPARK_HOME, the project's Python for
# workers, loopback by default, and the project's Spark settings as spark-submit --conf pairs.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SPARK_HOME="$(.venv/bin/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export PYSPARK_PYTHON="$PWD/.venv/bin/python"
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
# SPARK_CONF_ARGS: extra arguments of `cli spark-conf` (the Thrift Server: --long-lived).
mapfile -t conf < <(PYTHONPATH=. .venv/bin/python -m cli spark-conf ${SPARK_CONF_ARGS:-})
