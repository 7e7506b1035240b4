"""Case 5, a run worker that dies or hangs: the project's Dagster instance watches for it.

Spark-free: the instance is loaded from the project's own ``dagster.yaml``, as ``make ui`` does.
"""

import shutil

from dagster import DagsterInstance

from infra.settings import PROJECT_ROOT


def test_the_instance_monitors_runs_and_retries_a_failed_one(tmp_path):
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.run_monitoring_enabled
        # The default launcher cannot check a worker's health nor resume a run, so the runtime
        # bound is what ends a run whose worker died or hangs (docs/RUNBOOK.md).
        assert not instance.run_launcher.supports_check_run_worker_health
        assert not instance.run_launcher.supports_resume_run
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert 0 < instance.run_monitoring_max_runtime_seconds <= 6 * 3600
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    finally:
        instance.dispose()
