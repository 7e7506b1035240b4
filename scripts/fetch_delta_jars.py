"""Fetch the Delta Lake jars that match the installed pyspark and delta-spark, through Maven.

delta-spark's pip package ships Python only. Spark needs
``io.delta:delta-spark_<spark major.minor>_2.13:<delta version>`` and ``io.delta:delta-storage`` on
its classpath. This script resolves exactly those versions (and their runtime dependencies that
pyspark does not already ship) into ``.cache/jars/<key>/`` and writes a manifest that
``infra.spark`` checks at start-up, so later runs start without any download.

Usage: ``python scripts/fetch_delta_jars.py [--cache-dir DIR]``
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from infra.jars import (  # noqa: E402
    DeltaJarsError,
    delta_coordinates,
    delta_jar_paths,
    jar_cache_dir,
    write_manifest,
)

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.lakehouse</groupId><artifactId>delta-jars</artifactId><version>1</version>
  <dependencies>
{deps}
  </dependencies>
</project>
"""
DEP = (
    "    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
    "<version>{v}</version></dependency>"
)
_VERSIONED_JAR = re.compile(r"^(?P<artifact>.+?)-\d[\w.\-]*\.jar$")


def _artifact_name(jar_name: str) -> str:
    match = _VERSIONED_JAR.match(jar_name)
    return match.group("artifact") if match else jar_name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument(
        "--if-missing", action="store_true", help="do nothing when matching jars are cached"
    )
    args = parser.parse_args()
    if args.if_missing:
        try:
            delta_jar_paths(args.cache_dir)
            return 0
        except DeltaJarsError:
            pass

    import pyspark

    spark_version = pyspark.__version__
    delta_version = version("delta-spark")
    target = jar_cache_dir(args.cache_dir, spark_version, delta_version)
    coords = delta_coordinates(spark_version, delta_version)
    if shutil.which("mvn") is None:
        print(
            "error: Maven (mvn) is not on PATH; install it (apt-get install maven)", file=sys.stderr
        )
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        deps = "\n".join(DEP.format(g=g, a=a, v=v) for g, a, v in (c.split(":") for c in coords))
        (Path(tmp) / "pom.xml").write_text(POM.format(deps=deps))
        out = Path(tmp) / "jars"
        cmd = [
            "mvn", "-B", "-q", "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={out}",
        ]  # fmt: skip
        print(f"resolving {', '.join(coords)} through Maven ...", flush=True)
        subprocess.run(cmd, cwd=tmp, check=True)

        # Spark already ships scala-library, jackson, hadoop, parquet...: a second copy of any of
        # them on the classpath only risks version clashes, so keep what Spark lacks.
        spark_jars = Path(pyspark.__file__).parent / "jars"
        provided = {_artifact_name(p.name) for p in spark_jars.glob("*.jar")}
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.jar"):
            old.unlink()
        kept = []
        for jar in sorted(out.glob("*.jar")):
            if _artifact_name(jar.name) in provided:
                continue
            shutil.copy2(jar, target / jar.name)
            kept.append(jar.name)
    write_manifest(target, spark_version, delta_version, coords, kept)
    print(json.dumps({"jar_dir": str(target), "jars": kept}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
