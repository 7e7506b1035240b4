"""Where the Delta jars live and how we know they match the installed Python packages."""

import json
import os
from importlib.metadata import version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "manifest.json"
FETCH_HINT = "run `make jars` (python scripts/fetch_delta_jars.py) to fetch them through Maven"


class DeltaJarsError(RuntimeError):
    """The Delta jars are missing or do not match the installed pyspark / delta-spark."""


def delta_coordinates(spark_version: str, delta_version: str) -> list[str]:
    """Maven coordinates of the Delta jars for a Spark and a delta-spark version."""
    spark_minor = ".".join(spark_version.split(".")[:2])
    return [
        f"io.delta:delta-spark_{spark_minor}_2.13:{delta_version}",
        f"io.delta:delta-storage:{delta_version}",
    ]


def jar_cache_dir(base: Path | None, spark_version: str, delta_version: str) -> Path:
    """The folder holding the jars of one (Spark, Delta) pair."""
    root = base or Path(os.environ.get("DELTA_JARS_DIR", PROJECT_ROOT / ".cache" / "jars"))
    return Path(root) / f"spark-{spark_version}_delta-{delta_version}"


def write_manifest(
    target: Path, spark_version: str, delta_version: str, coords: list[str], jars: list[str]
) -> None:
    """Record which versions the jars in ``target`` were resolved for."""
    manifest = {"spark": spark_version, "delta": delta_version, "coordinates": coords, "jars": jars}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))


def delta_jar_paths(base: Path | None = None) -> list[str]:
    """Paths of the cached Delta jars for the installed versions, or a clear error."""
    import pyspark

    spark_version, delta_version = pyspark.__version__, version("delta-spark")
    target = jar_cache_dir(base, spark_version, delta_version)
    manifest_path = target / MANIFEST
    if not manifest_path.exists():
        raise DeltaJarsError(
            f"No Delta jars for pyspark {spark_version} / delta-spark {delta_version} in {target}: "
            + FETCH_HINT
        )
    manifest = json.loads(manifest_path.read_text())
    if (manifest["spark"], manifest["delta"]) != (spark_version, delta_version):
        raise DeltaJarsError(
            f"Delta jars in {target} were fetched for Spark {manifest['spark']} / Delta "
            f"{manifest['delta']}, not {spark_version} / {delta_version}: " + FETCH_HINT
        )
    paths = [target / name for name in manifest["jars"]]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise DeltaJarsError(f"Delta jars missing: {', '.join(missing)}: " + FETCH_HINT)
    return [str(p) for p in paths]
