"""Input versions: what makes a date's work unchanged, and what does not."""

from datetime import date, timedelta
from types import SimpleNamespace

from enrichment.providers.fallback import FALLBACK_ERROR_PREFIX
from infra import versions
from infra.lakehouse import LakehouseResource
from infra.versions import Step, Upstream, input_version, landing_fingerprint
from transforms.enrich import fallback_dates
from transforms.frames import local_frame

D = date(2026, 3, 31)


def _recorded(**by_asset: dict[date, str]) -> dict[str, list[tuple[date, str]]]:
    return {asset: sorted(days.items()) for asset, days in by_asset.items()}


def test_upstream_windows_cover_exactly_their_dates():
    same = Upstream("a")
    window = Upstream("a", 2)
    history = Upstream("a", 3, include_today=False)
    everything = Upstream("a", None)
    assert [same.covers(D, D - timedelta(days=i)) for i in range(2)] == [True, False]
    assert [window.covers(D, D - timedelta(days=i)) for i in range(4)] == [True, True, True, False]
    assert not window.covers(D, D + timedelta(days=1))
    assert [history.covers(D, D - timedelta(days=i)) for i in range(5)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert everything.covers(D, date(2000, 1, 1)) and not everything.covers(D, D + timedelta(1))


def test_a_change_inside_the_window_changes_the_version_and_outside_does_not():
    step = Step("staging_x", "transforms.recon.close", (Upstream("silver_a", 1),))
    base = {D: "v1", D - timedelta(days=1): "v0", D - timedelta(days=5): "old"}
    before = input_version(step, D, _recorded(silver_a=base))
    assert input_version(step, D, _recorded(silver_a=base)) == before
    inside = {**base, D - timedelta(days=1): "v0-changed"}
    assert input_version(step, D, _recorded(silver_a=inside)) != before
    outside = {**base, D - timedelta(days=5): "old-changed"}
    assert input_version(step, D, _recorded(silver_a=outside)) == before
    later = {**base, D + timedelta(days=1): "tomorrow"}
    assert input_version(step, D, _recorded(silver_a=later)) == before
    # An upstream date that was never recorded (or is new) is a change too.
    assert input_version(step, D, _recorded(silver_a={D: "v1"})) != before


def test_configuration_and_landing_are_part_of_the_version():
    step = Step("staging_x", "transforms.recon.close")
    assert input_version(step, D, {}, config="gpt-a") != input_version(step, D, {}, "gpt-b")
    assert input_version(step, D, {}, landing="f1") != input_version(step, D, {}, landing="f2")
    other = Step("staging_y", "transforms.recon.close")
    assert input_version(step, D, {}) != input_version(other, D, {})


def test_code_version_follows_the_modules_a_step_imports():
    # assets.close imports the reconciliation rules: its version covers them, a leaf does not.
    close = versions.code_version("assets.close")
    assert close == versions.code_version("assets.close")
    assert close != versions.code_version("transforms.recon.cash")
    seen = versions._imports("assets.close", versions._module_file("assets.close"))
    assert "transforms.recon.close" in seen and "pyspark" not in seen


def test_the_close_is_recomputed_when_a_date_of_its_documents_window_is_published_again():
    from assets.close import CLOSE_STEP
    from transforms.recon.documents import LOOKBACK_DAYS

    edge = D - timedelta(days=LOOKBACK_DAYS + 1)  # the D - 1 view's oldest date
    published = {D: "d", edge: "edge", edge - timedelta(days=1): "older"}
    before = input_version(CLOSE_STEP, D, _recorded(gold_invoice_documents=published))
    republished = {**published, edge: "edge-again"}
    assert input_version(CLOSE_STEP, D, _recorded(gold_invoice_documents=republished)) != before
    older = {**published, edge - timedelta(days=1): "older-again"}
    assert input_version(CLOSE_STEP, D, _recorded(gold_invoice_documents=older)) == before
    assert "transforms.recon.documents" in versions._imports(
        "transforms.recon.close", versions._module_file("transforms.recon.close")
    )


def test_landing_fingerprint_sees_content_not_only_names(tmp_path):
    folder = tmp_path / "business_date=2026-03-31"
    assert landing_fingerprint(folder) == "none"
    folder.mkdir()
    (folder / "a.csv").write_text("id,amount\n1,10.00\n")
    (folder / "_SUCCESS").write_text("")
    first = landing_fingerprint(folder)
    assert landing_fingerprint(folder) == first
    (folder / "a.csv").write_text("id,amount\n1,10.01\n")  # same size, other content
    assert landing_fingerprint(folder) != first
    (folder / "a.csv").write_text("id,amount\n1,10.00\n")
    assert landing_fingerprint(folder) == first
    (folder / "b.csv").write_text("id,amount\n")
    assert landing_fingerprint(folder) != first


def test_recorded_dates_are_skipped_failed_ones_are_not(spark, tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path / "lh"))
    bronze = Step("bronze_a", "assets.sources")
    silver = Step("silver_a", "assets.sources", (Upstream("bronze_a"),))
    days = [D - timedelta(days=1), D]
    landing = {days[0]: "f0", days[1]: "f1"}

    plan = versions.plan(spark, lakehouse, bronze, days, landing=landing)
    assert plan.to_run == days and plan.skipped == []
    versions.record(spark, lakehouse, plan, days, "run-1")
    silver_plan = versions.plan(spark, lakehouse, silver, days)
    versions.record(spark, lakehouse, silver_plan, [days[0]], "run-1", failed=[days[1]])

    again = versions.plan(spark, lakehouse, bronze, days, landing=landing)
    assert again.skipped == days and again.to_run == []
    # The date that failed is computed again; the one that passed is not.
    assert versions.plan(spark, lakehouse, silver, days).to_run == [days[1]]
    assert versions.plan(spark, lakehouse, silver, days, force=True).to_run == days

    # New files for one date: its bronze is recomputed, and so is its silver once bronze is.
    changed = {**landing, D: "f1-resent"}
    replan = versions.plan(spark, lakehouse, bronze, days, landing=changed)
    assert replan.to_run == [D]
    versions.record(spark, lakehouse, replan, [D], "run-2")
    assert versions.plan(spark, lakehouse, silver, days).to_run == [D]


def test_a_date_answered_by_the_fallback_publishes_but_is_computed_again(spark, tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path / "lh"))
    staging = Step("staging_a", "assets.expenses")
    publish = Step("gold_a", "assets.publishing", (Upstream("staging_a"),))
    days = [D - timedelta(days=1), D]
    passed = SimpleNamespace(passed=True)
    plan = versions.plan(spark, lakehouse, staging, days)
    versions.record_audited(
        spark, lakehouse, plan, {d: passed for d in days}, "run-1", fell_back={D}
    )
    # The fallback date is computed again by the next run; the other is not.
    assert versions.plan(spark, lakehouse, staging, days).to_run == [D]
    # Meanwhile its publish sees a passed, changed input and publishes it.
    assert versions.plan(spark, lakehouse, publish, days).to_run == days
    versions.record(spark, lakehouse, versions.plan(spark, lakehouse, publish, days), days, "r1")
    # The next run, the LLM healthy: recorded as done, so later runs skip it, and its publish
    # sees the new staging version.
    replan = versions.plan(spark, lakehouse, staging, days)
    versions.record_audited(spark, lakehouse, replan, {D: passed}, "run-2")
    assert versions.plan(spark, lakehouse, staging, days).to_run == []
    assert versions.plan(spark, lakehouse, publish, days).to_run == [D]


def test_fallback_dates_are_the_dates_with_an_offline_answer_for_the_llm(spark):
    rows = [
        (D, None, None),
        (D, "timeout", None),  # failed, not answered by the fallback
        (D - timedelta(days=1), None, FALLBACK_ERROR_PREFIX + "HTTP 500"),
        (D - timedelta(days=2), None, None),
    ]
    staged = local_frame(spark, rows, "business_date date, error string, urgency_error string")
    assert fallback_dates(staged) == {D - timedelta(days=1)}
    assert fallback_dates(staged.drop("error", "urgency_error")) == set()
