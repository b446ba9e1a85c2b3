"""gc: exactly the unreferenced, out-of-retention objects go, after a grace period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from envctl.config import Retention
from envctl.errors import StoreError
from envctl.lifecycle.catalogs import open_protected
from envctl.lifecycle.gc import MARKS_PREFIX, GcReport, collect
from envctl.lifecycle.reachability import reachability
from envctl.lifecycle.verify import check_records, verify_catalog
from envctl.store.base import Store
from envctl.testing.lifecyclekit import pkg_key

GRACE = 1.0  # hours, as the scenario's catalog.yaml says


def everything(store: Store) -> dict[str, int]:
    return {i.key: i.size for p in ("aliases/", "envs/", "locks/", "pkgs/", "gc/")
            for i in store.list_info(p)}


def run_gc(scenario: Any, store: Store, now: datetime, **kw: Any) -> GcReport:
    at = open_protected(scenario.repo.root)
    reach = reachability(at, now=now, retention=kw.pop("retention", None))
    return collect(store, reach, now=now, grace_hours=kw.pop("grace_hours", GRACE), **kw)


def assert_consistent(scenario: Any, store: Store) -> None:
    at = open_protected(scenario.repo.root)
    report = verify_catalog(at.catalog, store, rev=at.rev)
    assert report.ok, report.problems
    assert check_records(store) == []


def test_first_run_marks_and_deletes_nothing(scenario: Any, store: Store) -> None:
    before = everything(store)
    report = run_gc(scenario, store, scenario.now)
    assert {g.key for g in report.garbage} == scenario.expected_garbage
    assert report.deleted == [] and report.deletable == []
    assert report.mark_key is not None and report.mark_key.startswith(MARKS_PREFIX)
    after = everything(store)
    assert set(after) == set(before) | {report.mark_key}
    # Retention: what it kept and why.
    why = {(v.tag, v.position.alias): (v.kept, v.why) for v in report.reach.verdicts}
    assert why[("team/app:v1", "team/app:v1")] == (False, "retired")
    assert why[("team/app:stable", "team/app:v2")][0] is True  # the last earlier position
    assert why[("team/app:stable", "team/app:v1")][0] is False


def test_gc_sweeps_exactly_the_garbage_and_spares_an_upload_in_flight(
    scenario: Any, store: Store, in_flight: Callable[[], set[str]]
) -> None:
    mark = run_gc(scenario, store, scenario.now)
    assert mark.deleted == []
    fresh = in_flight()  # after the mark: CI uploaded, has not committed back yet
    later = scenario.now + timedelta(hours=GRACE, minutes=5)

    dry = run_gc(scenario, store, later, dry_run=True)
    # The in-flight record names the old tiny 1.0: it is garbage and ripe, but spared.
    reused = pkg_key("tiny", "1.0")
    assert set(dry.spared) == {reused}
    assert {g.key for g in dry.deletable} == scenario.expected_garbage - {reused}
    assert fresh <= set(dry.waiting)  # first marked now

    before = everything(store)
    report = run_gc(scenario, store, later)
    assert {g.key for g in report.deleted} == scenario.expected_garbage - {reused}
    assert report.deleted_bytes == sum(before[g.key] for g in report.deleted)
    left = everything(store)
    assert not scenario.expected_garbage - {reused} & set(left)
    assert scenario.kept | fresh | {reused} <= set(left)
    assert mark.mark_key in left  # the mark in use is kept; older ones go
    assert_consistent(scenario, store)


def test_dry_run_deletes_nothing(scenario: Any, store: Store) -> None:
    run_gc(scenario, store, scenario.now)
    before = everything(store)
    report = run_gc(scenario, store, scenario.now + timedelta(hours=2), dry_run=True)
    assert {g.key for g in report.deletable} == scenario.expected_garbage
    assert report.deleted == [] and report.mark_key is None
    assert everything(store) == before


def test_grace_period_not_over_deletes_nothing(scenario: Any, store: Store) -> None:
    run_gc(scenario, store, scenario.now)
    report = run_gc(scenario, store, scenario.now + timedelta(minutes=30))
    assert report.deleted == []
    assert set(report.waiting) == scenario.expected_garbage


def test_wider_retention_keeps_more(scenario: Any, store: Store) -> None:
    wide = Retention(keep_last=2, keep_days=7, grace_hours=GRACE)
    run_gc(scenario, store, scenario.now, retention=wide)
    report = run_gc(scenario, store, scenario.now + timedelta(hours=2), retention=wide)
    deleted = {g.key for g in report.deleted}
    # keep_last 2 keeps stable's v1 position (so v1's records and libold stay, though v1
    # is retired) and nightly's 1.2; its dead alias record still goes.
    assert "aliases/team/app/v1.json" in deleted
    assert not any("libold" in k or "tiny-1.2" in k for k in deleted)
    assert any("tiny-1.1" in k for k in deleted)
    assert_consistent(scenario, store)


class Crash(StoreError):
    pass


def test_a_crash_at_any_point_leaves_the_store_consistent(
    scenario: Any, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill gc after every 3 deletions (aliases, env records, locks, then packages), check
    the store, run it again: each run resumes, and every state in between is sound."""
    run_gc(scenario, store, scenario.now)
    later = scenario.now + timedelta(hours=2)
    real_delete = store.delete
    budget = {"n": 0}

    def flaky(key: str) -> None:
        if budget["n"] == 0:
            raise Crash(f"connection lost deleting {key}")
        budget["n"] -= 1
        real_delete(key)

    monkeypatch.setattr(store, "delete", flaky)
    crashes = 0
    while True:
        budget["n"] = 3
        try:
            report = run_gc(scenario, store, later, workers=1)
        except StoreError as exc:
            assert exc.rule == "gc-interrupted"
            assert "after deleting 3 of" in exc.message
            crashes += 1
            assert_consistent(scenario, store)
            continue
        break
    assert crashes == (len(scenario.expected_garbage) - 1) // 3
    assert not scenario.expected_garbage & set(everything(store))
    assert {g.key for g in report.deleted} <= scenario.expected_garbage
    assert_consistent(scenario, store)


def test_unknown_alias_record_and_recent_run_keep_their_environments(
    scenario: Any, store: Store
) -> None:
    from envctl.runs import RunRecord, register_run
    from envctl.store.records import AliasRecord, AliasTarget

    envs = sorted(k for k in scenario.expected_garbage if k.startswith("envs/"))

    def ids(key: str) -> tuple[str, str, str]:
        _, platform, req_id, full = key.removesuffix(".json").split("/")
        return platform, req_id, full

    # A run recorded today used one collectable environment (by id)...
    platform, req_id, full = ids(envs[0])
    register_run(
        RunRecord(pathspec="Flow/1/start", req_id=req_id, full_id=full, platform=platform),
        home=scenario.repo.root.parent / "home", store=store,
    )
    # ...and an alias this clone's history never saw (published since?) names another.
    platform2, req2, full2 = ids(envs[1])
    other = store.get_env_record(platform2, req2, full2)
    store.put_alias(AliasRecord(
        name="team/newer", tag="v1", mutable=False,
        platforms={platform2: AliasTarget(req_id=req2, full_id=full2)},
        lock_sha256=other.lock_sha256, commit="d" * 40, published_at="2026-01-01T00:00:00Z"))
    run_gc(scenario, store, scenario.now)
    report = run_gc(scenario, store, scenario.now + timedelta(hours=2))
    deleted = {g.key for g in report.deleted}
    for key in envs[:2]:
        assert key not in deleted and store.exists(key)
        record = store.get_env_record(*ids(key))
        assert store.exists(f"locks/{record.lock_sha256}.conda-lock.yml")
    assert store.exists("aliases/team/newer/v1.json")
    assert deleted == scenario.expected_garbage - set(everything(store))
    assert_consistent(scenario, store)


def test_pending_tags_and_an_empty_store(tmp_path: Any, git_env: Any) -> None:
    from envctl.store import LocalStore
    from envctl.testing.lifecyclekit import init_catalog

    repo = init_catalog(tmp_path / "catalog")
    repo.env("team/app", {"v1": {"dependencies": ["python"]}, "stable": {"points_to": "v1"}})
    repo.commit("pending v1", scenario_time())
    at = open_protected(repo.root)
    reach = reachability(at, now=scenario_time())
    assert reach.verdicts == [] and reach.live_aliases == {} and reach.dead_aliases == {}
    report = collect(LocalStore(tmp_path / "store"), reach, now=scenario_time(),
                     grace_hours=0)
    assert report.objects == 0 and report.garbage == [] and report.deleted == []


def scenario_time() -> datetime:
    from datetime import UTC

    return datetime(2026, 1, 1, tzinfo=UTC)


def test_gc_cli_marks_then_sweeps(scenario: Any, store: Store, monkeypatch: Any) -> None:
    import json

    from typer.testing import CliRunner

    from envctl.cli.main import app

    runner = CliRunner()
    monkeypatch.setenv("ENVCTL_STORE", store.url if store.url.startswith("s3://")
                       else store.describe(""))
    base = ["--catalog", str(scenario.repo.root), "gc", "--grace", "0"]
    dry = runner.invoke(app, [*base, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 0 objects (0 B)" in dry.output
    assert f"{len(scenario.expected_garbage)} more wait for the grace period" in dry.output
    first = runner.invoke(app, [*base, "--json"])
    assert first.exit_code == 0, first.output
    marked = json.loads(first.stdout)
    assert {g["key"] for g in marked["garbage"]} == scenario.expected_garbage
    assert marked["deleted"] == [] and marked["mark"]
    second = runner.invoke(app, base)
    assert second.exit_code == 0, second.output
    assert f"deleted {len(scenario.expected_garbage)} objects" in second.output
    assert not scenario.expected_garbage & set(everything(store))
    # Retention from the command line: keep nothing but the current positions.
    narrow = runner.invoke(app, [*base, "--keep-last", "0", "--older-than", "0", "--json"])
    garbage = {g["key"] for g in json.loads(narrow.stdout)["garbage"]}
    assert pkg_key("tiny", "1.3") in garbage  # nightly's last earlier position
    assert not garbage & {pkg_key("tiny", "1.4"), pkg_key("libnew"), pkg_key("python")}


def test_retention_rules() -> None:
    from envctl.lifecycle.reachability import DAY, Change, Position, judge

    def pos(n: int) -> Position:
        return Position(f"team/app:v{n}", f"{n:064x}", (), rev="r", lock_path="p")

    now = 100 * DAY
    changes = [Change(10 * DAY, "a", pos(1)), Change(50 * DAY, "b", pos(2)),
               Change(90 * DAY, "c", pos(3)), Change(95 * DAY, "d", pos(4))]
    kept = {v.position.alias: v.kept for v in judge("t", changes, Retention(
        keep_last=1, keep_days=7), now)}
    # v4 current; v3 the last earlier one; v2 superseded 10 days ago; v1 older still.
    assert kept == {"team/app:v4": True, "team/app:v3": True, "team/app:v2": False,
                    "team/app:v1": False}
    kept = {v.position.alias: v.kept for v in judge("t", changes, Retention(
        keep_last=0, keep_days=11), now)}
    assert kept == {"team/app:v4": True, "team/app:v3": True, "team/app:v2": True,
                    "team/app:v1": False}
    # A position that comes back counts from when it was last superseded.
    back = [*changes, Change(96 * DAY, "e", pos(1)), Change(97 * DAY, "f", pos(4))]
    kept = {v.position.alias: v.kept for v in judge("t", back, Retention(
        keep_last=1, keep_days=0), now)}
    assert kept["team/app:v1"] is True and kept["team/app:v3"] is False
    # Retired: the current position is not kept by the tag; deleted: only keep_days.
    retired = [Change(10 * DAY, "a", pos(1)), Change(99 * DAY, "b", pos(1), retired=True)]
    assert [v.kept for v in judge("t", retired, Retention(), now)] == [False]
    deleted = [Change(10 * DAY, "a", pos(1)), Change(80 * DAY, "b", None)]
    assert [v.kept for v in judge("t", deleted, Retention(keep_last=5, keep_days=7), now,
                                  deleted=True)] == [False]
