"""verify: every locked object present and intact; it finds a deleted and a corrupt one."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from envctl.cli.main import app
from envctl.lifecycle.catalogs import open_protected
from envctl.lifecycle.verify import check_records, verify_catalog
from envctl.store.base import Store, alias_key
from envctl.testing.lifecyclekit import lock_keys_of, pkg_key
from envctl.testing.storekit import Backend

runner = CliRunner()


def verify(scenario: Any, store: Store, *names: str, records: bool = False) -> Any:
    at = open_protected(scenario.repo.root)
    return verify_catalog(at.catalog, store, names=names, rev=at.rev, records=records)


def test_a_complete_store_verifies(scenario: Any, store: Store) -> None:
    report = verify(scenario, store, records=True)
    assert report.ok and report.problems == []
    assert report.tags == ["team/app:nightly", "team/app:v2", "team/app:v3"]
    assert report.skipped == {"team/app:v1": "retired: CVE-2024-0001"}
    # v2, v3, nightly: 3 locks, 3 env records, python + libshared x2 + libnew + tiny 1.4.
    assert report.objects == 3 + 3 + 5
    assert report.bytes > 0


def test_verify_finds_a_deleted_and_a_corrupted_object(scenario: Any, backend: Backend) -> None:
    store = backend.store
    missing = pkg_key("libnew")  # only v2 has it
    lock = next(k for k in lock_keys_of(scenario.repo.root, "team/app:v3")
                if k.startswith("locks/"))
    store.delete(missing)
    backend.corrupt(lock)
    report = verify(scenario, store)
    assert not report.ok
    found = {(p.key, p.problem): p.tags for p in report.problems}
    assert found == {
        (missing, "missing"): ("team/app:v2",),
        (lock, "corrupt"): ("team/app:v3",),
    }
    # Only the tag named is checked.
    assert verify(scenario, store, "team/app:nightly").ok
    stable = verify(scenario, store, "team/app:stable")  # a pointer: its target, v3
    assert stable.tags == ["team/app:v3"] and not stable.ok


def test_stale_alias_record_is_a_warning(scenario: Any, store: Store) -> None:
    # stable's record says v2 (as if CI had not republished it after the move to v3).
    v2 = store.get_bytes(alias_key("team/app", "v2"))
    record = json.loads(v2)
    record.update(tag="stable", mutable=True, target="v2")
    store.put_bytes(alias_key("team/app", "stable"),
                    (json.dumps(record, indent=2, sort_keys=True) + "\n").encode(),
                    mutable=True)
    report = verify(scenario, store)
    assert report.ok
    assert [(p.key, p.problem, p.severity) for p in report.problems] == [
        (alias_key("team/app", "stable"), "stale", "warning")]


def test_check_records_finds_a_dangling_reference(scenario: Any, store: Store) -> None:
    store.delete(pkg_key("tiny", "1.0"))  # named by nightly's first environment record
    problems = check_records(store)
    assert [(p.key, p.problem) for p in problems] == [(pkg_key("tiny", "1.0"), "dangling")]


def test_verify_cli(scenario: Any, store: Store, monkeypatch: Any) -> None:
    monkeypatch.setenv("ENVCTL_STORE", store.url if store.url.startswith("s3://")
                       else store.describe(""))
    root = str(scenario.repo.root)
    ok = runner.invoke(app, ["--catalog", root, "verify"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.splitlines()[-1].startswith("ok 3 tags at ")
    store.delete(pkg_key("python"))
    bad = runner.invoke(app, ["--catalog", root, "verify", "--json"])
    assert bad.exit_code == 1
    data = json.loads(bad.stdout)
    assert data["ok"] is False
    assert [(p["key"], p["problem"], p["tags"]) for p in data["problems"]] == [
        (pkg_key("python"), "missing", ["team/app:nightly", "team/app:v2", "team/app:v3"])]
