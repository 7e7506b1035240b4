#!/usr/bin/env bash
# Create .venv with the locked dependencies, fetch the Delta jars and build the Spark driver's
# class archive. Idempotent and quick when nothing changed: it re-syncs only when
# requirements.lock or pyproject.toml is newer than the env.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if [ "$(id -u)" = "0" ] && need apt-get; then
    echo "installing $* with apt-get ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: please install $* (needed by Spark / the Delta jar fetch)" >&2
    exit 1
  fi
}
apt_install_optional() {
  if [ "$(id -u)" = "0" ] && need apt-get; then
    apt_install "$@"
  else
    echo "note: $* not installed; scanned documents cannot be OCR'd (apt-get install $*)" >&2
  fi
}
# --venv-only: the Python env alone, which needs neither Java nor Maven (.ci/run builds it while
# apt-get installs those).
venv_only=false
[ "${1:-}" = "--venv-only" ] && venv_only=true
if ! $venv_only; then
  need java || apt_install openjdk-17-jre-headless
  need mvn || apt_install maven
  # OCR of scanned documents (documents/text.py); optional: without it only scans cannot be read.
  need tesseract || apt_install_optional tesseract-ocr
fi

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if need "$candidate" && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON="$candidate"; break
    fi
  done
fi
[ -n "$PYTHON" ] || { echo "error: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

# Bytecode is compiled at install: Python would compile every module it imports from source at
# each start where PYTHONDONTWRITEBYTECODE is set (as on this project's CI machines), about 4 s of
# CPU for the pipeline's imports (8.6 s -> 4.3 s to import pipelines.definitions, 2026-12-08) in
# every process: each run, test worker and test child. The stamp's name says what it was synced
# with, so an env synced before that is synced again once.
stamp=.venv/.synced-bytecode
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q "$(grep -E '^uv==' requirements.lock)"
  .venv/bin/uv pip sync -q --compile-bytecode --python .venv/bin/python requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  touch "$stamp"
fi
$venv_only && exit 0

.venv/bin/python scripts/fetch_delta_jars.py --if-missing
# The Spark driver's class archive for this machine's Java (a faster start; optional).
.venv/bin/python scripts/build_class_archive.py --if-missing

mkdir -p .dagster_home
ln -sf ../dagster.yaml .dagster_home/dagster.yaml
